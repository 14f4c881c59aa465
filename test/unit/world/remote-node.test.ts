// RemoteNode's statfs and chown (WorldFS → node): one relay each, bounded short (a node of an earlier
// version drops an op it does not know, and `df` or `tar x` must not wait the default minute), and the
// node's answer as it is. A write-only ctl file refuses a read-open itself.
import t from 'tap';
import { FsError } from '../../../src/errors/errno.js';
import { O_RDONLY, O_RDWR, O_WRONLY } from '../../../src/errors/open-flags.js';
import { RemoteCtlFile, RemoteNode } from '../../../src/world/remote-node.js';
import type { RelayOperation } from '../../../src/world/relay-call.js';

function recording(answer: (operation: RelayOperation) => Record<string, unknown>) {
  const sent: RelayOperation[] = [];
  const relay = async (operation: RelayOperation) => (sent.push(operation), answer(operation));
  return { sent, relay };
}

t.test('statfs: one relay, bounded at 5 s, the numbers as the node gives them (0 for any it leaves out)', async (t) => {
  const { sent, relay } = recording(() => ({ bsize: 4096, frsize: 4096, blocks: 1000, bfree: 400, bavail: 300, files: 64 }));
  const stats = await new RemoteNode(relay, '/fs/data').statfs();
  t.same(sent, [{ op: 'statfs', path: '/fs/data', timeout_ms: 5000 }]);
  t.same(stats, { bsize: 4096, frsize: 4096, blocks: 1000, bfree: 400, bavail: 300, files: 64, ffree: 0 });
});

t.test("chown: one relay, bounded at 5 s; the node's refusal is the answer", async (t) => {
  const { sent, relay } = recording((operation) => {
    if (operation.path.startsWith('/services/')) throw new FsError('EPERM', `${operation.path}: synthetic files keep their owner`);
    return {};
  });
  await new RemoteNode(relay, '/fs/data/a.txt').chown();
  const refused = await new RemoteNode(relay, '/services/echo/status.json').chown().then(
    () => undefined,
    (error: unknown) => error,
  );
  t.equal(refused instanceof FsError && refused.errno, 'EPERM', "a synthetic file: the node's EPERM");
  t.same(sent, [
    { op: 'chown', path: '/fs/data/a.txt', timeout_ms: 5000 },
    { op: 'chown', path: '/services/echo/status.json', timeout_ms: 5000 },
  ]);
});

t.test('a handle opened on a connection since lost: ESTALE at once, no relay; its release is quiet', async (t) => {
  let link: object | undefined = { first: true };
  const { sent, relay } = recording((operation) => (operation.op === 'open' ? { fh: 7 } : { data: '', written: 3 }));
  const remote = new RemoteNode(Object.assign(relay, { link: () => link }), '/fs/data/w.txt');
  const handle = await remote.open(1);
  await handle.write?.(0, Buffer.from('abc'));
  link = { second: true };
  for (const use of [() => handle.read?.(0, 5), () => handle.write?.(3, Buffer.from('def')), () => handle.flush?.(), () => handle.fsync?.(false)])
    await t.rejects(use() as Promise<unknown>, { errno: 'ESTALE', message: /link to the control server was lost since the open/ });
  await handle.release?.();
  t.same(
    sent.map((s) => s.op),
    ['open', 'write'],
    'nothing relayed after the link changed',
  );
});

t.test("a handle the node says is stale: that use fails with the node's ESTALE, every later one at once; release is quiet", async (t) => {
  const { sent, relay } = recording((operation) => {
    if (operation.op === 'open') return { fh: 7 };
    throw new FsError('ESTALE', `${operation.path}: relay handle 7 was released when the node's link to the control server was lost`);
  });
  const handle = await new RemoteNode(relay, '/fs/data/big.bin').open(0);
  await t.rejects(handle.read?.(0, 5) as Promise<Buffer>, { errno: 'ESTALE', message: /node's link/ });
  await t.rejects(handle.read?.(0, 5) as Promise<Buffer>, { errno: 'ESTALE', message: /node's link/ });
  await handle.release?.();
  t.same(
    sent.map((s) => s.op),
    ['open', 'read'],
    'one relay found it stale',
  );
});

t.test("a write-only ctl file: a read-open is refused here with the node's own words, no relay; a write-open goes to the node", async (t) => {
  const { sent, relay } = recording(() => ({ fh: 3 }));
  const reset = new RemoteCtlFile(relay, '/services/echo/control/reset');
  for (const flags of [O_RDONLY, O_RDWR])
    await t.rejects(reset.open(flags), { errno: 'EACCES', message: '/services/echo/control/reset: open mode not allowed (file mode 200)' });
  t.same(sent, [], 'nothing relayed, so nothing logged as a refusal of the server');
  await reset.open(O_WRONLY);
  t.same(sent, [{ op: 'open', path: '/services/echo/control/reset', flags: O_WRONLY }]);
});
