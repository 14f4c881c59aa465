// The tokens-and-projects suite on the file store (the default): one server, its data dir, and
// `acheron token --data-dir`. store-etcd.test.ts runs the same suite on etcd with two servers.
import t from 'tap';
import { acheron, startControl } from '../helpers/control.js';
import { tokenAndProjectSuite } from './suites/tokens-and-projects.js';

const control = await startControl(t);
await tokenAndProjectSuite(t, {
  servers: [control],
  adminToken: control.adminToken,
  userToken: control.userToken,
  token: (args) => acheron(['token', ...args, '--data-dir', control.dataDir]),
});
