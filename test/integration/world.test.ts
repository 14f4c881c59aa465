// SPEC §9 WorldFS, catalog part, with the server on the file store: the suite in suites/world.ts
// (world-etcd.test.ts runs it on etcd).
import t from 'tap';
import { worldSuite } from './suites/world.js';

await worldSuite(t);
