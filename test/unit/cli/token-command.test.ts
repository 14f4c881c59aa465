// `acheron token` on a file store (src/cli/token-command.ts): what each action prints, and which
// tokens `list --json` names as `admin` and `user` (SPEC §1: the default ones, by id).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import t, { type Test } from 'tap';
import { FileTokenStore } from '../../../src/control/file-token-store.js';
import { TokenRefused } from '../../../src/control/token-refused.js';
import { UsageError } from '../../../src/cli/exit.js';
import { runTokenCommand, type TokenArgs } from '../../../src/cli/token-command.js';

/** A data dir whose store a first server start made (an admin and a default user token). */
async function dataDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'acheron-token-command-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await (await FileTokenStore.open(dir)).close();
  return dir;
}

/** `acheron token <action> [id] --data-dir dir [options]`: the exit code and what it printed. */
async function token(dir: string, action: string, options: Partial<TokenArgs> = {}): Promise<{ code: number; out: string }> {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (chunk: Buffer) => chunks.push(chunk));
  const args: TokenArgs = {
    'data-dir': dir,
    json: false,
    store: 'file',
    'etcd-prefix': '/acheron/',
    'etcd-call-timeout-ms': 5_000,
    'etcd-start-timeout-ms': 10_000,
    ...options,
  };
  const code = await runTokenCommand(action, args, out, new PassThrough());
  return { code, out: Buffer.concat(chunks).toString() };
}

interface Listed {
  admin: string | null;
  user: string | null;
  tokens: Array<{ id: string; token?: string }>;
}
const list = async (dir: string): Promise<Listed> => JSON.parse((await token(dir, 'list', { json: true })).out) as Listed;
const secret = (doc: Listed, id: string): string | undefined => doc.tokens.find((e) => e.id === id)?.token;

t.test('list --json: admin and user are the tokens with those ids, never another holder of the role', async (t) => {
  const dir = await dataDir(t);
  const alice = JSON.parse((await token(dir, 'create', { user: 'alice', json: true })).out) as { id: string; token: string };
  const before = await list(dir);
  t.equal(before.user, secret(before, 'user'), 'user: the default token');
  t.equal(before.admin, secret(before, 'admin'), 'admin: the first admin token');

  await token(dir, 'revoke', { id: 'user' });
  const revoked = await list(dir);
  t.equal(revoked.user, null, 'the default user token revoked: null, not alice’s secret');
  t.ok(
    revoked.tokens.some((e) => e.token === alice.token),
    'alice’s token is still listed, under its own id',
  );

  const rotated = JSON.parse((await token(dir, 'rotate', { id: 'user', json: true })).out) as { id: string; token: string };
  const after = await list(dir);
  t.equal(after.user, rotated.token, '`rotate user` made the default token again: that one, although alice’s comes first');
});

t.test('--json: every action prints JSON, revoke too, keyed `id` as the entries are', async (t) => {
  const dir = await dataDir(t);
  const created = JSON.parse((await token(dir, 'create', { user: 'bob', json: true })).out) as { id: string };
  t.same(await token(dir, 'revoke', { id: created.id, json: true }), { code: 0, out: `{"id":"${created.id}","revoked":true}\n` });
  t.same(await token(dir, 'revoke', { id: 'user' }), { code: 0, out: 'revoked user\n' }, 'without --json: a line');
  await t.rejects(
    token(dir, 'revoke', { id: created.id }),
    new TokenRefused(`no token "${created.id}" (never made, or already revoked: see acheron token list)`),
    'revoked twice: the second says it may have been revoked already (the store keeps no record of it)',
  );
});

t.test('rotate of a join token: refused as single-use, not as a token that does not exist', async (t) => {
  const dir = await dataDir(t);
  const join = JSON.parse((await token(dir, 'join', { json: true })).out) as { id: string };
  await t.rejects(
    token(dir, 'rotate', { id: join.id }),
    new TokenRefused(`token "${join.id}" is a join token: join tokens are single-use and cannot be rotated (make a new one with acheron token join)`),
  );
  await t.rejects(
    token(dir, 'rotate', { id: 'join-nope' }),
    new TokenRefused('no token "join-nope" (never made, or already revoked: see acheron token list)'),
    'an unknown id: as before',
  );
  t.ok(
    (await list(dir)).tokens.some((e) => e.id === join.id),
    'the join token is left as it was',
  );
});

t.test('an option of another action is refused, not ignored (`create --ttl-ms 5` made a token that never expires)', async (t) => {
  const dir = await dataDir(t);
  await t.rejects(token(dir, 'create', { user: 'u1', 'ttl-ms': 5 }), new UsageError("--ttl-ms is for token join (a join token's lifetime), not token create"));
  await t.rejects(token(dir, 'join', { user: 'u1' }), new UsageError('--user is for token create, not token join'));
  await t.rejects(token(dir, 'list', { agent: 'a1' }), new UsageError('--agent is for token create, not token list'));
  const before = Date.now();
  const made = JSON.parse((await token(dir, 'join', { json: true })).out) as { expires_ms: number };
  t.ok(made.expires_ms >= before + 3_600_000 && made.expires_ms <= Date.now() + 3_600_000, 'join without --ttl-ms: an hour, as before');
  t.notOk(
    (await list(dir)).tokens.some((e) => e.id.startsWith('user-') && e.id.includes('u1')),
    'nothing made by the refused create',
  );
});
