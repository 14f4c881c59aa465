/**
 * src/store: durable bytes on local disk. Owns `StateJournal` (append + fdatasync with group commit,
 * compaction, torn and corrupt tails), `writeFileAtomic`/`writeAll` (and `removeStaleTemps` for the
 * temp files of a writer that died), `makeDirectory` and `PidLock`
 * (one live daemon per mount point or state file); the node and the control server keep their state
 * through it.
 *
 * Must not import: any other area of src/ (cli/, node/, control/, world/, runtime/, manifest/,
 * protocol/, fuse/, vfs/, errors/): it stores bytes and knows no document or errno.
 */
/**
 * src/store: durable local storage shared by the node (runtime journal) and the control server
 * (catalog, leases, tokens). Imports nothing else from src/. Trap: every write path here runs on
 * libuv's thread pool; never put a store file on an Acheron mount (the daemon would wait on itself).
 */
export { AppendLog, type CommitBatch } from './append-log.js';
export { StateJournal, BATCH_SYNC_MS, type StateSync } from './state-journal.js';
export type { RestoredState } from './journal-records.js';
export { removeStaleTemps, syncDir, writeAll, writeFileAtomic, type WriteData } from './atomic-file.js';
export { gzipInBackground } from './gzip-file.js';
export { makeDirectory } from './make-directory.js';
export { setAside } from './set-aside.js';
export { PidLock, pidLockPath, type LockedThing } from './pid-lock.js';
