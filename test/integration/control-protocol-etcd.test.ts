// The control protocol suite (suites/control-protocol.ts) with its servers on etcd (one member, a
// prefix per new server). control-protocol.test.ts runs it on files.
import t from 'tap';
import { serversUseStore } from '../helpers/control.js';
import { etcdStore, startEtcd } from '../helpers/etcd.js';
import { controlProtocolSuite } from './suites/control-protocol.js';

const cluster = await startEtcd(t);
serversUseStore(() => etcdStore(cluster));
await controlProtocolSuite(t);
