// A service removed from its node while WorldFS holds files of it open (docs/node-tree.md, errno
// table: "service removed by a reload"): once the catalog event reaches the mount, every later use
// of a handle opened before answers ENOENT, as on the node's own mount, also after a service of
// the same id came back (the node runs it on a new runtime). A WorldFS tree driven in process over
// a real CatalogMirror and a relay that answers like the node.
import t from 'tap';
import { applyDefaults } from '../../../src/manifest/index.js';
import { serviceHash } from '../../../src/protocol/service-hash.js';
import type { ServiceDescriptor } from '../../../src/protocol/types.gen.js';
import { O_RDWR, O_WRONLY } from '../../../src/errors/open-flags.js';
import { Dispatcher } from '../../../src/vfs/dispatch.js';
import { CatalogMirror } from '../../../src/world/catalog-mirror.js';
import type { WorldCatalog } from '../../../src/world/world-catalog.js';
import { buildWorldTree } from '../../../src/world/world-tree.js';
import { publicNode } from '../../helpers/catalog-sim.js';
import { rejectsErrno } from '../../helpers/errno.js';

const cam = (version: string): ServiceDescriptor =>
  applyDefaults({ service_id: 'cam', kind: 'k', version, runtime: { type: 'native_proc', executable_path: '/bin/cat' } }, 'n1');

const mirror = new CatalogMirror();
let seq = 0;
/** The node as the control server has it now: a read of it, as after each reload. */
const publish = (services: ServiceDescriptor[]): void =>
  mirror.set({
    ...publicNode('n1', services, { updated_ms: ++seq, seq }),
    service_hashes: Object.fromEntries(services.map((s) => [s.service_id, serviceHash(s)])),
  });
const relayed: string[] = [];
const catalog = {
  connected: true,
  lastError: '',
  changedMs: 1,
  grant: undefined,
  nodeIds: () => mirror.nodeIds(),
  node: (nodeId: string) => mirror.node(nodeId),
  incarnation: (nodeId: string, serviceId: string) => mirror.incarnation(nodeId, serviceId),
  relay: async (_nodeId: string, operation: { op: string; path: string }) => {
    relayed.push(`${operation.op} ${operation.path}`);
    const data = Buffer.from(`{"seq":${seq}}\n`);
    return { mode: 0o100444, size: data.length, mtime_ms: 1, ctime_ms: 1, data: data.toString('base64') };
  },
  link: () => undefined,
};
const world = new Dispatcher(buildWorldTree({ catalog: catalog as unknown as WorldCatalog }));
const CAM = '/nodes/n1/services/cam';

t.test('removed: a read of an open document, and each use of an open invoke.json but its release, answer ENOENT', async (t) => {
  publish([cam('1')]);
  const status = await world.open(`${CAM}/status.json`, 0);
  const invoke = await world.open(`${CAM}/control/invoke.json`, O_WRONLY);
  const rdwr = await world.open(`${CAM}/control/invoke.json`, O_RDWR);
  t.equal((await status.read!(0, 100)).toString(), `{"seq":${seq}}\n`, 'read while the service is there');
  await invoke.write!(0, Buffer.from('{"a":'));
  publish([]);
  relayed.length = 0;
  await rejectsErrno(t, status.read!(0, 100), 'ENOENT', 'status.json: read');
  await rejectsErrno(t, invoke.write!(5, Buffer.from('1}')), 'ENOENT', 'invoke.json: write');
  await rejectsErrno(t, invoke.flush!(), 'ENOENT', 'invoke.json: flush (close)');
  await rejectsErrno(t, invoke.truncate!(0), 'ENOENT', 'invoke.json: ftruncate');
  await rejectsErrno(t, invoke.fsync!(false), 'ENOENT', 'invoke.json: fsync');
  await rejectsErrno(t, rdwr.read!(0, 100), 'ENOENT', 'invoke.json O_RDWR: read');
  await Promise.all([status.release?.(), invoke.release?.(), rdwr.release?.()]);
  t.same(relayed, [], 'nothing was sent to the node: no invoke');
});

t.test('removed and added again under the same id: the handles of before stay ENOENT; new opens work', async (t) => {
  publish([cam('1')]);
  const status = await world.open(`${CAM}/status.json`, 0);
  const invoke = await world.open(`${CAM}/control/invoke.json`, O_WRONLY);
  await invoke.write!(0, Buffer.from('{}'));
  publish([]);
  publish([cam('1')]);
  relayed.length = 0;
  await rejectsErrno(t, status.read!(0, 100), 'ENOENT', 'status.json opened before: read');
  await rejectsErrno(t, invoke.flush!(), 'ENOENT', 'invoke.json opened before: flush (close)');
  await invoke.release!();
  t.same(relayed, [], 'its release commits nothing into the new service');
  const fresh = await world.open(`${CAM}/status.json`, 0);
  t.equal((await fresh.read!(0, 100)).toString(), `{"seq":${seq}}\n`, 'a new open reads the new service');
});

t.test('a reload that changes the service keeps its runtime: handles stay usable', async (t) => {
  publish([cam('1')]);
  const status = await world.open(`${CAM}/status.json`, 0);
  const invoke = await world.open(`${CAM}/control/invoke.json`, O_WRONLY);
  publish([cam('2')]);
  t.equal((await status.read!(0, 100)).toString().length > 0, true, 'status.json: read');
  relayed.length = 0;
  t.equal(await invoke.write!(0, Buffer.from('{}')), 2, 'invoke.json: write');
  await invoke.flush!();
  t.same(relayed, ['invoke /services/cam/control/invoke.json'], 'and the flush commits it');
});
