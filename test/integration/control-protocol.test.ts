// SPEC §6 control protocol against a live `acheron control` on the file store: the suite in
// suites/control-protocol.ts (control-protocol-etcd.test.ts runs it on etcd).
import t from 'tap';
import { controlProtocolSuite } from './suites/control-protocol.js';

await controlProtocolSuite(t);
