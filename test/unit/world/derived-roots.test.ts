// Derived mount roots (SPEC §2, §8, §9): services whose mounts[] name a path outside services/<id>
// show at that path in WorldFS, with the same visibility as services/<id>, and the project's
// `mount` action on top. The rules alone, then a WorldFS tree driven in process.
import t from 'tap';
import type { PublicNode, ServiceDescriptor, SessionAttachReply } from '../../../src/protocol/types.gen.js';
import { Dispatcher } from '../../../src/vfs/dispatch.js';
import { derivedRoots } from '../../../src/world/derived-roots.js';
import type { WorldCatalog } from '../../../src/world/world-catalog.js';
import { buildWorldTree } from '../../../src/world/world-tree.js';
import { publicNode } from '../../helpers/catalog-sim.js';
import { rejectsErrno } from '../../helpers/errno.js';

const service = (
  serviceId: string,
  mountPaths: string[],
  permissions: ServiceDescriptor['permissions'] = { default: 'deny-by-default', allow_roles: ['admin', 'user'] },
): ServiceDescriptor => ({
  service_id: serviceId,
  kind: 'test',
  version: '1',
  state: 'online',
  endpoints: [`/nodes/n1/services/${serviceId}`],
  capabilities: {},
  mounts: mountPaths.map((mountPath, i) => ({ mount_id: `${serviceId}-${i}`, mount_path: mountPath })),
  ops: {},
  runtime: { type: 'native_proc', executable_path: '/usr/bin/cat' } as ServiceDescriptor['runtime'],
  permissions,
  schema: {},
});
const roots = (services: ServiceDescriptor[]): string[] => derivedRoots('n1', services).map((r) => `${r.segments.join('/')}=${r.serviceId}`);

t.test('a mount path under the node, outside its fixed names, is a root; anything else is not', async (t) => {
  t.same(
    roots([service('cam', ['/nodes/n1/services/cam', '/nodes/n1/devices/cam', '/nodes/n1//top/'])]),
    ['top=cam', 'devices/cam=cam'],
    'shorter first; empty segments do not count',
  );
  t.same(roots([service('x', ['/nodes/n2/devices/x', '/nodes/n1', '/nodes/n1/', '/nodes/n10/x'])]), [], "another node's path, or the node directory itself");
  t.same(
    roots([service('x', ['/nodes/n1/services/other', '/nodes/n1/fs/data', '/nodes/n1/NODE.json', '/nodes/n1/README.md/x'])]),
    [],
    'never inside or over the fixed names',
  );
  t.same(roots([service('x', ['/nodes/n1/a/../b', '/nodes/n1/./a', `/nodes/n1/${'y'.repeat(256)}`])]), [], '., .. and names longer than NAME_MAX are ignored');
});

t.test('conflicts: the shorter path wins, then the smaller service id; the same for every viewer', async (t) => {
  t.same(roots([service('b', ['/nodes/n1/dev/x']), service('a', ['/nodes/n1/dev/x'])]), ['dev/x=a']);
  t.same(roots([service('a', ['/nodes/n1/dev/x/deeper']), service('z', ['/nodes/n1/dev/x'])]), ['dev/x=z'], 'a root inside another is ignored');
  t.same(roots([service('a', ['/nodes/n1/dev/x']), service('b', ['/nodes/n1/dev/y'])]), ['dev/x=a', 'dev/y=b'], 'siblings share their parent');
});

const node: PublicNode = publicNode('n1', [
  service('cam', ['/nodes/n1/services/cam', '/nodes/n1/devices/cam']),
  service('secret', ['/nodes/n1/devices/secret', '/nodes/n1/shared'], { default: 'deny-by-default', allow_roles: ['admin'] }),
  service('user-shared', ['/nodes/n1/shared/inner']),
]);
const grant = (actions: Partial<Record<'invoke' | 'mount', string>>): SessionAttachReply => ({
  project_id: 'p',
  nodes: ['n1'],
  has_project_token: false,
  actions: { read: 'allowed', observe: 'allowed', invoke: 'allowed', mount: 'allowed', admin: 'no', ...actions },
});
const relayed: string[] = [];
function tree(sessionGrant: SessionAttachReply | undefined): Dispatcher {
  const catalog = {
    connected: true,
    lastError: '',
    changedMs: 1,
    grant: sessionGrant,
    nodeIds: () => ['n1'],
    node: (id: string) => (id === 'n1' ? node : undefined),
    incarnation: (id: string, serviceId: string) => (id === 'n1' && node.services.some((s) => s.service_id === serviceId) ? node : undefined),
    relay: async (_nodeId: string, operation: { op: string; path: string }) => {
      relayed.push(`${operation.op} ${operation.path}`);
      return { mode: 0o100444, size: 0, mtime_ms: 1, ctime_ms: 1 };
    },
  };
  return new Dispatcher(buildWorldTree({ catalog: catalog as unknown as WorldCatalog }));
}

t.test("admins: every root, each the service's whole directory, its live files relayed as services/<id>/", async (t) => {
  const d = tree(undefined);
  t.same((await d.readdir('/nodes/n1')).slice(-2), ['devices', 'shared'], 'after the fixed names');
  t.same(await d.readdir('/nodes/n1/devices'), ['cam', 'secret']);
  t.same(await d.readdir('/nodes/n1/devices/cam'), await d.readdir('/nodes/n1/services/cam'), 'the same directory as services/cam');
  t.same(
    await d.readdir('/nodes/n1/shared'),
    await d.readdir('/nodes/n1/services/secret'),
    "secret (shorter path) takes shared/, user-shared's shared/inner is inside it",
  );
  relayed.length = 0;
  await d.getattr('/nodes/n1/devices/cam/result.json');
  t.same(relayed, ['read_file /services/cam/result.json'], 'the node is asked for its services/cam/, where its files are');
  t.equal((await d.getattr('/nodes/n1/devices')).mode & 0o170000, 0o040000, 'a directory on the way is a directory');
});

t.test('users: a hidden service has no roots and takes no path; refused `mount` hides all roots', async (t) => {
  const d = tree(grant({}));
  t.same(await d.readdir('/nodes/n1/devices'), ['cam']);
  await rejectsErrno(t, d.getattr('/nodes/n1/devices/secret'), 'ENOENT', "an admin-only service's root is ENOENT");
  t.same(await d.readdir('/nodes/n1/shared'), ['inner'], 'shared/ leads to user-shared: the hidden secret does not take it');
  t.same(await d.readdir('/nodes/n1/shared/inner'), await d.readdir('/nodes/n1/services/user-shared'));

  const noMount = tree(grant({ mount: 'project p: mount is for admins only' }));
  t.notOk((await noMount.readdir('/nodes/n1')).includes('devices'), 'no derived roots without `mount`');
  await rejectsErrno(t, noMount.getattr('/nodes/n1/devices/cam'), 'ENOENT');
  t.ok((await noMount.readdir('/nodes/n1/services')).includes('cam'), 'services/cam itself stays (it needs `invoke`, not `mount`)');

  const noInvoke = tree(grant({ invoke: 'project p: invoke is denied' }));
  await rejectsErrno(t, noInvoke.getattr('/nodes/n1/devices'), 'ENOENT', 'a service hidden by `invoke` has no root either');
});
