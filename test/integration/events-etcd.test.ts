// The events suite (suites/events.ts) with every server on etcd (one member), each new server under a
// prefix of its own; a kill -9 restart comes back on the same prefix. events.test.ts runs it on files.
import t from 'tap';
import { serversUseStore } from '../helpers/control.js';
import { etcdStore, startEtcd } from '../helpers/etcd.js';
import { eventsSuite } from './suites/events.js';

const cluster = await startEtcd(t);
serversUseStore(() => etcdStore(cluster));
await eventsSuite(t);
