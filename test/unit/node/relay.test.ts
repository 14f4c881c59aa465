// The WorldFS relay without a network: RelayServer runs operations against a small tree through a
// Dispatcher (as the node does), and RemoteNode on the WorldFS side talks to it directly. Checks
// the commit rule across the relay, at-most-once by request id, per-session handles, and paths.
import t from 'tap';
import { pino } from 'pino';
import { RelayServer } from '../../../src/node/relay-server.js';
import type { RelayOutcome, RelayRequest } from '../../../src/protocol/relay.js';
import { commitFile } from '../../../src/vfs/commit-file.js';
import { Dispatcher } from '../../../src/vfs/dispatch.js';
import { tableDirectory } from '../../../src/vfs/directory.js';
import { FsError } from '../../../src/vfs/errors.js';
import { staticFile } from '../../../src/vfs/files.js';
import { RemoteNode, type Relay } from '../../../src/world/remote-node.js';
import { rejectsErrno } from '../../helpers/errno.js';

const commits: string[] = [];
const root = tableDirectory([
  ['README.md', staticFile('hello\n')],
  ['services', tableDirectory([['echo', tableDirectory([['control', tableDirectory([['invoke.json', commitFile({
    file: 'control/invoke.json',
    maxBytes: 1024,
    limitName: 'runtime.max_input_bytes',
    admit: () => undefined,
    commit: async (payload) => {
      const text = payload.toString();
      if (text.includes('refuse')) throw new FsError('EPERM', 'refused by the target');
      commits.push(text);
      return Buffer.from(`{"n":${commits.length}}\n`);
    },
    record: () => undefined,
    changedMs: () => 0,
  })]])]])]])],
]);
const server = new RelayServer(new Dispatcher(root), pino({ level: 'silent' }));
t.teardown(() => server.close());

let nextId = 1;
const run = (request: Omit<RelayRequest, 'relay_id' | 'session' | 'request_id'> & { session?: string; request_id?: string }): Promise<RelayOutcome> =>
  server.execute({ relay_id: 'r', session: 's1', request_id: `q${nextId++}`, ...request } as RelayRequest);
/** What WorldFS sees: a RemoteNode whose relay is this server, with its errors turned back into FsErrors. */
const relay: Relay = async (operation) => {
  const outcome = await run(operation as Parameters<typeof run>[0]);
  if (!outcome.ok) throw new FsError(outcome.errno as 'EIO', outcome.message ?? '');
  return outcome.result ?? {};
};
const remote = new Dispatcher(new RemoteNode(relay, '/'));

t.test('stat, list and read come from the node\'s tree', async (t) => {
  t.equal((await remote.getattr('/README.md')).size, 6);
  t.same(await remote.readdir('/'), ['README.md', 'services']);
  const handle = await remote.open('/README.md', 0);
  t.equal((await handle.read!(0, 100)).toString(), 'hello\n');
  await handle.release!();
  await rejectsErrno(t, remote.getattr('/nope'), 'ENOENT');
  await rejectsErrno(t, remote.open('/README.md', 1), 'EACCES');
});

t.test('the commit rule runs on the node: one commit per write-open, whatever the flushes', async (t) => {
  const before = commits.length;
  const handle = await remote.open('/services/echo/control/invoke.json', 1);
  await handle.flush!(); // bash flushes once before writing
  await handle.write!(0, Buffer.from('{"a":'));
  await handle.flush!(); // an unfinished prefix commits nothing
  await handle.write!(5, Buffer.from('1}'));
  await handle.flush!();
  await handle.release!();
  t.same(commits.slice(before), ['{"a":1}']);
  const rdwr = await remote.open('/services/echo/control/invoke.json', 2);
  await rdwr.write!(0, Buffer.from('{"b":2}'));
  const expected = `{"n":${commits.length + 1}}\n`;
  t.equal((await rdwr.read!(0, 100)).toString(), expected, 'O_RDWR reads its own outcome');
  await rdwr.release!();
  const refused = await remote.open('/services/echo/control/invoke.json', 1);
  await refused.write!(0, Buffer.from('{"refuse":true}'));
  await rejectsErrno(t, refused.flush!(), 'EPERM');
});

t.test('a repeated request id gets the first outcome again: at most once', async (t) => {
  const opened = await run({ op: 'open', path: '/services/echo/control/invoke.json', flags: 1 });
  const fh = Number(opened.result?.fh);
  const path = '/services/echo/control/invoke.json';
  await run({ op: 'write', path, fh, offset: 0, data: Buffer.from('{"once":1}').toString('base64') });
  const before = commits.length;
  const first = await run({ op: 'flush', path, fh, request_id: 'same' });
  const again = await run({ op: 'flush', path, fh, request_id: 'same' });
  t.same(again, first);
  t.equal(commits.length, before + 1, 'committed once');
  t.match(await run({ op: 'unlink', path: '/README.md', request_id: 'same' }), { ok: false, errno: 'EINVAL' }, 'a request id reused for another operation is refused');
  t.match(await run({ op: 'flush', path, fh, request_id: 'same', session: 's9' }), { ok: false, errno: 'EBADF' }, 'ids are per session: another session runs its own (and has no such handle)');
});

t.test('a handle is used only with the path it was opened on', async (t) => {
  const opened = await run({ op: 'open', path: '/README.md', flags: 0 });
  t.match(await run({ op: 'read', path: '/services/echo/control/invoke.json', fh: Number(opened.result?.fh), offset: 0, length: 10 }), { ok: false, errno: 'EBADF' });
});

t.test('dropAll: the link to the control server went down, every handle goes', async (t) => {
  const opened = await run({ op: 'open', path: '/README.md', flags: 0, session: 's3' });
  await server.dropAll();
  t.match(await run({ op: 'read', path: '/README.md', fh: Number(opened.result?.fh), offset: 0, length: 10, session: 's3' }), { ok: false, errno: 'EBADF' });
});

t.test('handles belong to their session and go with it', async (t) => {
  const opened = await run({ op: 'open', path: '/README.md', flags: 0, session: 's2' });
  const fh = Number(opened.result?.fh);
  t.match(await run({ op: 'read', path: '/README.md', fh, offset: 0, length: 10, session: 's1' }), { ok: false, errno: 'EBADF' }, 'another session cannot use it');
  t.match(await run({ op: 'read', path: '/README.md', fh, offset: 0, length: 10, session: 's2' }), { ok: true });
  await server.dropSession('s2');
  t.match(await run({ op: 'read', path: '/README.md', fh, offset: 0, length: 10, session: 's2' }), { ok: false, errno: 'EBADF' }, 'released with its session');
});

t.test('paths with .. or NUL are refused before anything runs', async (t) => {
  t.match(await run({ op: 'stat', path: '/services/../README.md' }), { ok: false, errno: 'EINVAL' });
  t.match(await run({ op: 'rename', path: '/README.md', to: '/../x' }), { ok: false, errno: 'EINVAL' });
  t.match(await run({ op: 'stat', path: '/README.md\0' }), { ok: false, errno: 'EINVAL' });
});

t.test('create on a lazy lookup: a name that is not there is created, not opened', async (t) => {
  await rejectsErrno(t, remote.create('/new.txt', 0o644, 1), 'EACCES', 'the node refuses creating here, with its own errno');
});

t.test('rename across nodes is EXDEV', async (t) => {
  const other = new RemoteNode(async () => ({}), '/');
  await rejectsErrno(t, new RemoteNode(relay, '/').rename('README.md', other, 'x'), 'EXDEV');
});
