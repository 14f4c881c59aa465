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
