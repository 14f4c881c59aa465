// The WorldFS relay without a network: RelayServer runs operations against a small tree through a
// Dispatcher (as the node does), and RemoteNode and the live files on the WorldFS side talk to it
// directly. Checks the commit rule across the relay, the semantic operations (read_file, invoke,
// stage, reject), at-most-once by request id, per-session handles, and paths.
import t from 'tap';
import { pino } from 'pino';
import { RelayServer } from '../../../src/node/relay-server.js';
import { RELAY_CHUNK_BYTES } from '../../../src/protocol/relay.js';
import type { RelayOutcome, RelayRequest, ServiceDescriptor } from '../../../src/protocol/types.gen.js';
import { commitFile } from '../../../src/vfs/commit-file.js';
import { Dispatcher } from '../../../src/vfs/dispatch.js';
import { tableDirectory } from '../../../src/vfs/directory.js';
import { FsError } from '../../../src/errors/errno.js';
import { S_IFREG, type VNode } from '../../../src/vfs/node.js';
import { stat } from 'node:fs/promises';
import { ctlFile, readOnlyHandle, snapshotFile, staticFile } from '../../../src/vfs/files.js';
import { DocumentCache, liveServiceFiles, OPEN_REUSE_MS } from '../../../src/world/live-files.js';
import { RemoteNode, type Relay } from '../../../src/world/remote-node.js';
import { rejectsErrno } from '../../helpers/errno.js';

const commits: string[] = [];
const recorded: string[] = [];
const BIG = 600 * 1024;
const invokeFile = (maxBytes: number) =>
  commitFile({
    file: 'control/invoke.json',
    maxBytes,
    limitName: 'runtime.max_input_bytes',
    admit: () => undefined,
    commit: async (payload) => {
      const text = payload.toString();
      if (text.includes('refuse')) throw new FsError('EPERM', 'refused by the target');
      commits.push(text);
      // A long outcome for a long payload: the relay must bring all of it back.
      return text.length > RELAY_CHUNK_BYTES ? payload : Buffer.from(`{"n":${commits.length}}\n`);
    },
    record: (error) => void recorded.push(`${error.errno}: ${error.message}`),
    changedMs: () => 0,
  });
/** A file whose open waits until the test lets it finish: a session can go meanwhile. */
const slowOpen = { gate: Promise.resolve(), released: 0 };
const slowFile = {
  ...staticFile('slow\n'),
  async open() {
    await slowOpen.gate;
    return { ...readOnlyHandle(Buffer.from('slow\n')), release: async () => void slowOpen.released++ };
  },
};
let statusRenders = 0;
const big = Buffer.alloc(BIG, 'b');
const root = tableDirectory([
  ['README.md', staticFile('hello\n')],
  [
    'services',
    tableDirectory([
      ['echo', tableDirectory([['control', tableDirectory([['invoke.json', invokeFile(1024)]])]])],
      [
        'large',
        tableDirectory([
          [
            'control',
            tableDirectory([
              ['invoke.json', invokeFile(4 << 20)],
              ['reset', ctlFile(async () => undefined)],
            ]),
          ],
          ['status.json', snapshotFile(() => ({ data: `{"renders":${++statusRenders}}\n`, mtimeMs: 5 }))],
          ['result.json', staticFile(big)],
        ]),
      ],
    ]),
  ],
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

t.test("stat, list and read come from the node's tree", async (t) => {
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
  t.match(
    await run({ op: 'unlink', path: '/README.md', request_id: 'same' }),
    { ok: false, errno: 'EINVAL' },
    'a request id reused for another operation is refused',
  );
  t.match(
    await run({ op: 'flush', path, fh, request_id: 'same', session: 's9' }),
    { ok: false, errno: 'EBADF' },
    'ids are per session: another session runs its own (and has no such handle)',
  );
});

t.test('a handle is used only with the path it was opened on', async (t) => {
  const opened = await run({ op: 'open', path: '/README.md', flags: 0 });
  t.match(await run({ op: 'read', path: '/services/echo/control/invoke.json', fh: Number(opened.result?.fh), offset: 0, length: 10 }), {
    ok: false,
    errno: 'EBADF',
  });
});

t.test('dropAll: the link to the control server went down, every handle goes (ESTALE: the requester did nothing wrong)', async (t) => {
  const opened = await run({ op: 'open', path: '/README.md', flags: 0, session: 's3' });
  const fh = Number(opened.result?.fh);
  await server.dropAll();
  t.match(await run({ op: 'read', path: '/README.md', fh, offset: 0, length: 10, session: 's3' }), { ok: false, errno: 'ESTALE', message: /link .* was lost/ });
  // A node started again: a handle of its earlier run is stale too, never taken for one of its own.
  const restarted = new RelayServer(new Dispatcher(root), pino({ level: 'silent' }));
  t.teardown(() => restarted.close());
  const fresh = await restarted.execute({ relay_id: 'r', session: 's3', request_id: 'fresh', op: 'open', path: '/README.md', flags: 0 } as RelayRequest);
  t.not(fresh.result?.fh, fh, 'a new handle number');
  t.match(
    await restarted.execute({ relay_id: 'r', session: 's3', request_id: 'old', op: 'read', path: '/README.md', fh, offset: 0, length: 10 } as RelayRequest),
    {
      ok: false,
      errno: 'ESTALE',
    },
  );
});

t.test('handles belong to their session and go with it', async (t) => {
  const opened = await run({ op: 'open', path: '/README.md', flags: 0, session: 's2' });
  const fh = Number(opened.result?.fh);
  t.match(
    await run({ op: 'read', path: '/README.md', fh, offset: 0, length: 10, session: 's1' }),
    { ok: false, errno: 'EBADF' },
    'another session cannot use it',
  );
  t.match(await run({ op: 'read', path: '/README.md', fh, offset: 0, length: 10, session: 's2' }), { ok: true });
  await server.dropSession('s2');
  t.match(await run({ op: 'read', path: '/README.md', fh, offset: 0, length: 10, session: 's2' }), { ok: false, errno: 'EBADF' }, 'released with its session');
});

t.test('an open that ends after its session went: the handle is released, not kept for no one', async (t) => {
  const slowServer = new RelayServer(new Dispatcher(tableDirectory([['slow', slowFile]])), pino({ level: 'silent' }));
  t.teardown(() => slowServer.close());
  let nextSlowId = 1;
  const openSlow = (session: string): Promise<RelayOutcome> =>
    slowServer.execute({ relay_id: 'r', session, request_id: `q${nextSlowId++}`, op: 'open', path: '/slow', flags: 0 } as RelayRequest);
  for (const [what, drop] of [
    ['its session dropped', () => slowServer.dropSession('s4')],
    ['the link down', () => slowServer.dropAll()],
  ] as const) {
    let open = (): void => undefined;
    slowOpen.gate = new Promise<void>((resolve) => (open = resolve));
    const before = slowOpen.released;
    const opening = openSlow('s4');
    await drop();
    open();
    t.match(await opening, { ok: false, errno: 'ENOTCONN' }, `${what}: the opener is told`);
    t.equal(slowOpen.released, before + 1, `${what}: released`);
  }
  slowOpen.gate = Promise.resolve();
  t.match(await openSlow('s5'), { ok: true }, 'another session opens as before');
  const before = slowOpen.released;
  await slowServer.close();
  t.equal(slowOpen.released, before + 1, 'close: the node stops, the handle still open is released');
});

t.test('paths with .. or NUL are refused before anything runs', async (t) => {
  t.match(await run({ op: 'stat', path: '/services/../README.md' }), { ok: false, errno: 'EINVAL' });
  t.match(await run({ op: 'rename', path: '/README.md', to: '/../x' }), { ok: false, errno: 'EINVAL' });
  t.match(await run({ op: 'stat', path: '/README.md\0' }), { ok: false, errno: 'EINVAL' });
});

t.test('a link target with NUL is EINVAL, as a path with one is, not an EIO logged as a bug', async (t) => {
  t.match(await run({ op: 'symlink', path: '/services/lnul', target: 'a.txt\0x' }), {
    ok: false,
    errno: 'EINVAL',
    message: /a link target may not contain NUL/,
  });
});

t.test("a system error's message reaches the requester with the relayed path, not the node's real one", async (t) => {
  // What an export's file system answers: Node's message names the real path.
  const real = '/srv/exports/data/nope.txt';
  const leaky: VNode = {
    getattr: () => stat(real) as never,
  } as VNode;
  const server = new RelayServer(new Dispatcher(tableDirectory([['nope.txt', leaky]])), pino({ level: 'silent' }));
  t.teardown(() => server.close());
  const outcome = await server.execute({ relay_id: 'r', session: 's1', request_id: 'leak', op: 'stat', path: '/nope.txt' } as RelayRequest);
  t.match(outcome, { ok: false, errno: 'ENOENT', message: 'stat /nope.txt: no such file or directory' });
  t.notMatch(JSON.stringify(outcome), '/srv/exports', 'no real path');
});

t.test('mknod is relayed with its type bits, and the node answers with its own errno', async (t) => {
  await rejectsErrno(t, remote.mknod('/new.txt', S_IFREG | 0o644), 'EACCES', 'the node refuses creating here');
  // A directory that makes files (an export's refuses other types after its EROFS: fs-provider.ts).
  const asked: number[] = [];
  const making: VNode = {
    ...tableDirectory([]),
    mknod: async (_name, mode) => {
      asked.push(mode);
      throw new FsError('EPERM', 'only regular files can be made here');
    },
  };
  const node = new RelayServer(new Dispatcher(making), pino({ level: 'silent' }));
  t.teardown(() => node.close());
  const toNode: Relay = async (operation) => {
    const outcome = await node.execute({ relay_id: 'r', session: 's1', request_id: `m${nextId++}`, ...operation } as RelayRequest);
    if (!outcome.ok) throw new FsError(outcome.errno as 'EIO', outcome.message ?? '');
    return outcome.result ?? {};
  };
  await rejectsErrno(t, new Dispatcher(new RemoteNode(toNode, '/')).mknod('/fifo', 0o010644), 'EPERM', "the node's own errno");
  t.same(asked, [0o010644], 'asked with its type bits');
});

t.test('rename across nodes is EXDEV', async (t) => {
  const other = new RemoteNode(async () => ({}), '/');
  await rejectsErrno(t, new RemoteNode(relay, '/').rename('README.md', other, 'x'), 'EXDEV');
});

t.test('read_file: a document in one round trip; a long one keeps a handle for the rest', async (t) => {
  const small = await run({ op: 'read_file', path: '/README.md' });
  t.match(small, { ok: true, result: { size: 6, data: Buffer.from('hello\n').toString('base64') } });
  t.notOk('fh' in (small.result ?? {}), 'nothing left open');
  const long = await run({ op: 'read_file', path: '/services/large/result.json' });
  t.equal(long.result?.size, BIG);
  t.equal(Buffer.from(String(long.result?.data), 'base64').length, RELAY_CHUNK_BYTES, 'the first chunk');
  const fh = Number(long.result?.fh);
  const rest = await run({ op: 'read', path: '/services/large/result.json', fh, offset: RELAY_CHUNK_BYTES, length: RELAY_CHUNK_BYTES });
  t.equal(Buffer.from(String(rest.result?.data), 'base64').length, RELAY_CHUNK_BYTES, 'the rest from the kept handle');
  t.match(await run({ op: 'release', path: '/services/large/result.json', fh }), { ok: true });
  t.match(await run({ op: 'read_file', path: '/services' }), { ok: false, errno: 'EISDIR' });
  t.match(await run({ op: 'read_file', path: '/nope' }), { ok: false, errno: 'ENOENT' });
});

t.test("invoke: one payload, one commit through the file's own target; a repeated request id answers again without running", async (t) => {
  const path = '/services/echo/control/invoke.json';
  const data = Buffer.from('{"whole":1}').toString('base64');
  const before = commits.length;
  const first = await run({ op: 'invoke', path, data, size: 11, outcome: true, request_id: 'inv-1' });
  t.match(first, { ok: true, result: { data: Buffer.from(`{"n":${before + 1}}\n`).toString('base64') } });
  t.same(await run({ op: 'invoke', path, data, size: 11, outcome: true, request_id: 'inv-1' }), first, 'the first outcome again');
  t.equal(commits.length, before + 1, 'committed once');
  t.same(await run({ op: 'invoke', path, data, size: 11 }), { ok: true, result: {} }, 'without outcome: {}');
  t.match(await run({ op: 'invoke', path, data: Buffer.from('{"refuse":1}').toString('base64') }), { ok: false, errno: 'EPERM' }, "the target's errno");
  t.match(await run({ op: 'invoke', path, data: Buffer.from('x'.repeat(2000)).toString('base64') }), { ok: false, errno: 'EFBIG' }, 'over maxBytes');
  t.match(recorded.at(-1), /^EFBIG: /, 'and recorded as a write past the limit would be');
  t.match(await run({ op: 'invoke', path: '/README.md', data }), { ok: false, errno: 'EINVAL' }, 'not a commit file');
  t.match(await run({ op: 'reject', path, errno: 'EINVAL', message: 'a hole at 7' }), { ok: true });
  t.equal(recorded.at(-1), 'EINVAL: a hole at 7', 'reject: the node records what WorldFS found');
  t.match(await run({ op: 'reject', path, errno: 'EINVAL', message: 'a hole at 8\nEPERM: a forged line' }), { ok: true });
  t.equal(recorded.at(-1), 'EINVAL: a hole at 8\\u000aEPERM: a forged line', 'one line: a client writes no lines of its own into last_error.txt');
});

t.test('stage: a payload above one chunk arrives in chunks and commits whole, once', async (t) => {
  const path = '/services/large/control/invoke.json';
  const payload = Buffer.from(JSON.stringify({ fill: 'y'.repeat(700 * 1024) }));
  const chunk = (offset: number) => ({
    path,
    request_id: 'big-1',
    size: payload.length,
    offset,
    data: payload.subarray(offset, offset + RELAY_CHUNK_BYTES).toString('base64'),
  });
  // Out of order, as parallel chunks may arrive.
  t.match(await run({ ...chunk(RELAY_CHUNK_BYTES), op: 'stage' }), { ok: true });
  t.match(await run({ ...chunk(0), op: 'stage' }), { ok: true });
  const before = commits.length;
  const done = await run({ ...chunk(2 * RELAY_CHUNK_BYTES), op: 'invoke', outcome: true });
  t.equal(commits.length, before + 1);
  t.equal(commits.at(-1), payload.toString(), 'exactly the bytes');
  t.equal(done.result?.size, payload.length, "the long outcome's size");
  t.ok(done.result?.fh !== undefined, 'and a handle for its rest');
  t.match(
    await run({ ...chunk(2 * RELAY_CHUNK_BYTES), op: 'invoke', request_id: 'big-2' }),
    { ok: false, errno: 'EINVAL' },
    'chunks missing: refused, nothing runs',
  );
  t.match(await run({ ...chunk(0), op: 'stage', request_id: 'big-3', size: 5 << 20 }), { ok: false, errno: 'EFBIG' }, 'a size over maxBytes');
  await server.dropAll();
});

t.test('WorldFS live files: a stat and a cat are one read_file; an echo is one invoke', async (t) => {
  const ops: string[] = [];
  const counted: Relay = async (operation) => {
    ops.push(operation.op);
    return relay(operation);
  };
  const descriptor = {
    runtime: { max_input_bytes: 4 << 20, timeout_ms: 1000, kill_grace_ms: 100, max_queue: 1, max_concurrency: 1 },
  } as unknown as ServiceDescriptor;
  const documents = new DocumentCache();
  const world = new Dispatcher(
    tableDirectory(liveServiceFiles(counted, documents, { serviceId: 'large', descriptor: () => descriptor, alive: () => undefined, changedMs: () => 0 })),
  );
  const rendersBefore = statusRenders;
  // What `cat` does: lookup (a stat), open, fstat (a stat again), reads, release.
  const attr = await world.getattr('/status.json');
  const handle = await world.open('/status.json', 0);
  t.same(await world.getattr('/status.json'), attr, 'fstat: the same snapshot');
  const text = (await handle.read!(0, 4096)).toString();
  t.equal(attr.size, text.length, 'stat and read agree');
  await handle.release!();
  t.same(ops, ['read_file'], 'one round trip for stat, open, fstat, read');
  t.equal(statusRenders, rendersBefore + 1, 'rendered once on the node');
  ops.length = 0;
  const again = await world.open('/status.json', 0);
  t.not((await again.read!(0, 4096)).toString(), text, 'the next open fetches afresh');
  await world.getattr('/status.json');
  t.same(ops, ['read_file'], 'and its fstat uses what it fetched');
  ops.length = 0;
  const writer0 = await world.open('/control/reset', 1);
  await writer0.release!();
  await world.getattr('/status.json');
  t.same(ops, ['open', 'release', 'read_file'], 'a change relayed by this mount drops the snapshots');
  // A stat of an earlier command (`ls -l`), then a change made elsewhere, then `cat`.
  await world.getattr('/status.json');
  await new Promise((resolve) => setTimeout(resolve, OPEN_REUSE_MS + 20));
  ops.length = 0;
  const later = await world.open('/status.json', 0);
  const laterText = (await later.read!(0, 4096)).toString();
  await later.release!();
  t.same(ops, ['read_file'], 'an open after an earlier stat reads afresh');
  t.equal(laterText, `{"renders":${statusRenders}}\n`, "it reads the node's bytes as they are now, not the stat's snapshot");

  ops.length = 0;
  const before = commits.length;
  const writer = await world.open('/control/invoke.json', 1);
  await writer.flush!();
  await writer.write!(0, Buffer.from('{"via":'));
  await writer.flush!();
  await writer.write!(7, Buffer.from('"world"}'));
  await writer.flush!();
  await writer.release!();
  t.same(ops, ['invoke'], 'open, flushes, writes: one invoke');
  t.equal(commits.slice(before).join(), '{"via":"world"}');
  const rendered = statusRenders;
  const after = await world.open('/status.json', 0);
  t.match((await after.read!(0, 4096)).toString(), `{"renders":${rendered}}`, 'status.json as the invoke left it, sent with its answer');
  t.same(ops, ['invoke'], 'so reading it costs no round trip');

  ops.length = 0;
  const payload = Buffer.from(JSON.stringify({ fill: 'z'.repeat(600 * 1024) }));
  const rdwr = await world.open('/control/invoke.json', 2);
  await rdwr.write!(0, payload);
  const outcome: Buffer[] = [];
  for (let at = 0; ;) {
    const chunk = await rdwr.read!(at, 128 * 1024);
    if (chunk.length === 0) break;
    outcome.push(chunk);
    at += chunk.length;
  }
  await rdwr.release!();
  t.ok(Buffer.concat(outcome).equals(payload), 'O_RDWR: the whole long outcome');
  t.same(ops, ['stage', 'stage', 'invoke', 'read', 'read', 'release'], "two chunks staged, one invoke, the outcome's rest read");

  ops.length = 0;
  const tooBig = await world.open('/control/invoke.json', 1);
  await rejectsErrno(t, tooBig.write!(0, Buffer.alloc((4 << 20) + 1, 32)), 'EFBIG', 'EFBIG at the write, found in WorldFS');
  t.same(ops, ['reject'], 'and sent to the node to record');
});
