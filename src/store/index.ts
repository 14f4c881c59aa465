/**
 * src/store: durable local storage shared by the node (runtime journal) and the control server
 * (catalog, leases, tokens). Imports nothing else from src/. Trap: every write path here runs on
 * libuv's thread pool; never put a store file on an Acheron mount (the daemon would wait on itself).
 */
export { AppendLog, type CommitBatch } from './append-log.js';
export { StateJournal, BATCH_SYNC_MS, type RestoredState, type StateSync } from './state-journal.js';
export { syncDir, writeAll, writeFileAtomic, type WriteData } from './atomic-file.js';
