// The event-shapes suite (suites/delta-events.ts) on etcd: each case gets a fresh prefix with two
// servers on it, changes going through one and watches through the other; a kill -9 restart fills
// the new server's replay ring from etcd's history. delta-events.test.ts runs it on the file store.
import t from 'tap';
import { startControl, type RunningControl, type TestStore } from '../helpers/control.js';
import { etcdStore, startEtcd } from '../helpers/etcd.js';
import { deltaEventsSuite } from './suites/delta-events.js';

const cluster = await startEtcd(t);
const storeOf = new Map<RunningControl, TestStore>();

await deltaEventsSuite(t, {
  servers: async (tt) => {
    const store = await etcdStore(cluster);
    const [writer, reader] = await Promise.all([startControl(tt, { store }), startControl(tt, { store })]);
    storeOf.set(reader, store);
    return { writer, reader };
  },
  restart: (tt, control) => startControl(tt, { dataDir: control.dataDir, store: storeOf.get(control) as TestStore }),
});
