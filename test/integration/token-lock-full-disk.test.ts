// The token file's lock on a disk that fills up (a real tmpfs): a lock file the disk had no room for
// was left behind empty, and every join and `acheron token` command then waited 10 s and failed,
// blaming "another process", until it was 30 s old. Now the failed lock is removed and its error names
// the lock file and the errno; the next change works as soon as there is room.
import t from 'tap';
import { readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sh, q } from '../helpers/process.js';
import { tmpfsDir } from '../helpers/tmpfs.js';
import { FileTokenStore } from '../../src/control/file-token-store.js';
import { ACHERON } from '../helpers/node.js';

const dir = await tmpfsDir(t, '256k');

const data = join(dir, 'd');
const filler = join(dir, 'filler');
const lock = join(data, 'auth_tokens.json.lock');

t.test('a lock the disk has no room for is removed; the next change works at once', async (t) => {
  const store = await FileTokenStore.open(data);
  const spare = await store.createJoin(60_000);
  await sh(`head -c 1M /dev/zero > ${q(filler)}`);
  await t.rejects(
    store.createJoin(60_000),
    { code: 'ENOSPC', message: new RegExp(`^${lock}: the lock could not be written: ENOSPC`) },
    'refused, naming the lock file; ENOSPC kept',
  );
  t.notOk((await readdir(data)).includes('auth_tokens.json.lock'), 'no lock file left behind');
  await rm(filler);
  const started = Date.now();
  t.ok(await store.consumeJoin(spare.token), 'a join with another token goes through');
  t.ok(Date.now() - started < 2_000, 'at once, not after the 10 s lock wait');
});

t.test('an empty lock file is not blamed on another process', async (t) => {
  await writeFile(lock, '');
  t.teardown(() => rm(lock, { force: true }));
  const store = await FileTokenStore.open(data).catch((error: unknown) => error as Error);
  t.type(store, Error);
  t.match((store as Error).message, /auth_tokens\.json\.lock: an empty lock file \(left by a process that failed or died while taking it\) for over 10000 ms/);
  t.notMatch((store as Error).message, /another process/);
});

t.test('acheron token list reads the file as it is: on a full disk it lists, and a change says what failed', async (t) => {
  // It took the lock and rewrote the file first (the opening a server does), so it failed with ENOSPC too.
  await FileTokenStore.open(data);
  await sh(`head -c 1M /dev/zero > ${q(filler)}`);
  t.teardown(() => rm(filler, { force: true }));
  const list = await sh(`${q(process.execPath)} ${q(ACHERON)} token list --data-dir ${q(data)} --json`);
  t.equal(list.code, 0, `token list exits 0 (stderr: ${list.stderr.trim()})`);
  t.match(JSON.parse(list.stdout), { admin: /^.+$/, tokens: [{ id: 'admin', role: 'admin' }] }, 'and lists the tokens');
  t.notOk((await readdir(data)).includes('auth_tokens.json.lock'), 'no lock taken');
  const create = await sh(`${q(process.execPath)} ${q(ACHERON)} token create --user u1 --data-dir ${q(data)}`);
  t.equal(create.code, 1, 'token create: exit 1');
  t.match(create.stderr, /auth_tokens\.json\.lock: the lock could not be written: ENOSPC/, 'naming the lock file and the errno');
});
