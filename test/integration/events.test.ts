// SPEC §6 Events and Event history, §7 watch metrics, §8 watch role gates, on the file store: the
// suite in suites/events.ts (events-etcd.test.ts runs it on etcd).
import t from 'tap';
import { eventsSuite } from './suites/events.js';

await eventsSuite(t);
