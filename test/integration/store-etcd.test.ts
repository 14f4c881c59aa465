// `acheron control --store etcd`: two servers on one etcd share tokens and projects: the
// tokens-and-projects suite (store-file.test.ts runs it on the file store), done through one server
// and checked on the other. store-etcd-faults.test.ts has the rest.
import t from 'tap';
import { acheron, startControl } from '../helpers/control.js';
import { etcdStore, startEtcd } from '../helpers/etcd.js';
import { tokenAndProjectSuite } from './suites/tokens-and-projects.js';

const cluster = await startEtcd(t);
const store = await etcdStore(cluster);
const [a, b] = [await startControl(t, { store }), await startControl(t, { store })];
await tokenAndProjectSuite(t, {
  servers: [a, b],
  adminToken: store.adminToken,
  userToken: store.userToken,
  token: (args) => acheron(['token', ...args, ...store.args]),
});

t.test('token list of a prefix that holds no token (mistyped): a warning naming it, an empty list', async (t) => {
  const typo = ['--store', 'etcd', '--etcd-endpoints', cluster.endpoints.join(','), '--etcd-prefix', '/acheorn/'];
  const r = await acheron(['token', 'list', ...typo]);
  t.equal(r.code, 0, 'exit 0: nothing failed');
  t.equal(r.stdout, '', 'no tokens listed');
  t.equal(r.stderr, 'acheron: warning: no tokens under --etcd-prefix /acheorn/ (a control server makes the first at its first start: is the prefix right?)\n');
  const right = await acheron(['token', 'list', ...store.args]);
  t.equal(right.stderr, '', 'no warning where tokens are');
});
