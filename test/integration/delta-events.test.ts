// The event-shapes suite (suites/delta-events.ts) on the file store: one server, its data dir; a
// kill -9 restart reads the history back from disk. delta-events-etcd.test.ts runs it on etcd.
import t from 'tap';
import { startControl } from '../helpers/control.js';
import { deltaEventsSuite } from './suites/delta-events.js';

await deltaEventsSuite(t, {
  servers: async (tt) => {
    const control = await startControl(tt);
    return { writer: control, reader: control };
  },
  restart: (tt, control) => startControl(tt, { dataDir: control.dataDir }),
});
