// The WorldFS suite (suites/world.ts) with its control server on etcd (one member, a prefix of its
// own; the restart comes back on the same prefix). world.test.ts runs it on files.
import t from 'tap';
import { serversUseStore } from '../helpers/control.js';
import { etcdStore, startEtcd } from '../helpers/etcd.js';
import { worldSuite } from './suites/world.js';

const cluster = await startEtcd(t);
serversUseStore(() => etcdStore(cluster));
await worldSuite(t);
