// Join tokens spent together: the updates that queue while one is written share the next
// read-modify-write of auth_tokens.json (group commit); each keeps its own outcome.
import t from 'tap';
import { spawn } from 'node:child_process';
import { readdir, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FileTokenStore } from '../../../src/control/file-token-store.js';
import { tempDir } from '../../helpers/node.js';
import { reapedPid } from '../../helpers/process.js';

t.test('concurrent joins: each token spent once, a failing update fails alone', async (t) => {
  const dir = await tempDir(t);
  const store = await FileTokenStore.open(dir);
  const tokens = await Promise.all(Array.from({ length: 20 }, () => store.createJoin(60_000)));
  const spent = await Promise.all([
    ...tokens.map((e) => store.consumeJoin(e.token)),
    store.consumeJoin(tokens[0]?.token ?? ''),
    store.consumeJoin('ach_join_unknown'),
  ]);
  t.equal(spent.filter(Boolean).length, 20, 'twenty spent');
  t.same(spent.slice(20), [false, false], 'a token twice, an unknown one: refused');
  // Revoking the only admin token fails inside its update, in the same batch as the next one.
  const failing = store.revoke(store.data.admin[0]?.id ?? '');
  const other = store.createUser('u', null);
  await t.rejects(failing, { message: /last admin/ }, 'the failing update rejects');
  t.ok((await other).token, 'the other update of the batch went through');
  const reread = await FileTokenStore.open(dir);
  t.equal(reread.data.join.filter((e) => e.used_ms !== null).length, 20, 'on disk');
  t.ok(
    reread.data.users.some((u) => u.user_id === 'u'),
    'the user too',
  );
});

t.test('a change by another process is read before the next update, not written over', async (t) => {
  const dir = await tempDir(t);
  const server = await FileTokenStore.open(dir);
  const cli = await FileTokenStore.open(dir);
  const first = await server.createJoin(60_000);
  const made = await cli.createJoin(60_000);
  t.ok(await server.consumeJoin(first.token), 'the server spends its own token (its copy is current)');
  t.ok(await server.consumeJoin(made.token), 'and one the other process made since: it read the file again');
  const reread = await FileTokenStore.open(dir);
  t.same(
    reread.data.join.map((e) => e.used_ms !== null),
    [true, true],
    'both spent, on disk',
  );
});

t.test('a file another process rewrote within the same mtime and size is still read again', async (t) => {
  const dir = await tempDir(t);
  const server = await FileTokenStore.open(dir);
  const cli = await FileTokenStore.open(dir);
  const path = join(dir, 'auth_tokens.json');
  // One mtime for both versions of the file (as two writes within one timestamp tick would have).
  const tick = 1_700_000_000;
  await utimes(path, tick, tick);
  await server.list();
  const before = await stat(path);
  const rotated = await cli.rotate('user');
  await utimes(path, tick, tick);
  const after = await stat(path);
  t.same([after.mtimeMs, after.size], [before.mtimeMs, before.size], 'same mtime and size: only the inode tells');
  await server.createJoin(60_000);
  const reread = await FileTokenStore.open(dir);
  t.equal(reread.data.users[0]?.token, rotated.token, 'the rotation is not written over');
});

t.test('a damaged token file is refused by position, never quoted', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, 'auth_tokens.json'), '{"admin":[{"token":"ach_admin_Sup3rS3cret"}],\n');
  const error = await FileTokenStore.open(dir).catch((e: unknown) => e as Error);
  t.match(error, { message: /auth_tokens\.json: invalid JSON at line 2, column 1 \(byte 46\): the document ends inside a JSON value$/ });
  t.notMatch(String(error), /S3cret/);
});

t.test('a token another process made a moment ago counts at once, also while a reload is in flight', async (t) => {
  const dir = await tempDir(t);
  const server = await FileTokenStore.open(dir);
  const cli = await FileTokenStore.open(dir);
  // Reloads started all the time (as upgrades and the follower's poll start them): one is nearly always in flight.
  let hammering = true;
  const hammer = (): void => {
    if (!hammering) return;
    void server.reloadIfChanged();
    setImmediate(hammer);
  };
  hammer();
  t.teardown(() => void (hammering = false));
  const refused: number[] = [];
  for (let i = 0; i < 40; i++) {
    const { token } = await cli.createUser(`u${i}`, null);
    if ((await server.authenticate(token)) === undefined) refused.push(i);
  }
  hammering = false;
  t.same(refused, [], 'every new token authenticated on the first try');
});

t.test('a token another process made counts at once, also while this process writes the file', async (t) => {
  const dir = await tempDir(t);
  const server = await FileTokenStore.open(dir);
  const cli = await FileTokenStore.open(dir);
  const refused: number[] = [];
  for (let i = 0; i < 30; i++) {
    const { token } = await cli.createUser(`w${i}`, null);
    // The server spends or makes a token (a node joining) just as the new token's first login comes.
    const writing = server.createJoin(60_000);
    await new Promise((resolve) => setTimeout(resolve, i % 3));
    if ((await server.authenticate(token)) === undefined) refused.push(i);
    await writing;
  }
  t.same(refused, [], 'every new token authenticated on the first try');
});

t.test('rotate user after the `user` token was revoked makes `user` again, never rotating another holder', async (t) => {
  const store = await FileTokenStore.open(await tempDir(t));
  const alice = await store.createUser('alice', null);
  await store.revoke('user');
  const made = await store.rotate('user');
  t.equal(made.id, 'user', 'the token `user`, made again');
  t.same(
    await store.authenticate(alice.token),
    { kind: 'user', tokenId: alice.id, userId: 'alice', agentId: null },
    "alice's token still works (it was rotated in its place)",
  );
  t.same(await store.authenticate(made.token), { kind: 'user', tokenId: 'user', userId: 'user', agentId: null });
});

t.test('a lock file naming a recycled pid (a live process, no node or acheron) is taken over at once', async (t) => {
  const dir = await tempDir(t);
  const store = await FileTokenStore.open(dir);
  const sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
  t.teardown(() => void sleeper.kill('SIGKILL'));
  const lock = join(dir, 'auth_tokens.json.lock');
  await writeFile(lock, String(sleeper.pid));
  const started = Date.now();
  t.ok((await store.createJoin(60_000)).token, 'a join token is made');
  t.ok(Date.now() - started < 5_000, `without the 10 s wait (${Date.now() - started} ms)`);
  await t.rejects(stat(lock), { code: 'ENOENT' }, 'and the lock released after');
  t.same(
    (await readdir(dir)).filter((name) => name.startsWith('auth_tokens.json.lock')),
    [],
    'no claim left behind',
  );
});

t.test('opening removes the temp file of a writer killed before its rename, never a live one', async (t) => {
  const dir = await tempDir(t);
  const sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
  t.teardown(() => void sleeper.kill('SIGKILL'));
  const dead = `auth_tokens.json.tmp-${await reapedPid()}-${Date.now()}`;
  const live = `auth_tokens.json.tmp-${sleeper.pid}-${Date.now()}`;
  await writeFile(join(dir, dead), '{"admin":[');
  await writeFile(join(dir, live), '{"admin":[');
  await FileTokenStore.open(dir);
  const names = await readdir(dir);
  t.notOk(names.includes(dead), "the dead writer's is removed");
  t.ok(names.includes(live), "the live writer's stays");
});
