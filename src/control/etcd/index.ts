/**
 * src/control/etcd: the control store on etcd (npm etcd3 1.1.2 on Debian etcd-server 3.4), the only
 * place that imports etcd3 and cockatiel. One concern per file: options (client settings), connection
 * (start-up check, failures → `unavailable`), member-failures (what each member last failed with, named
 * when a circuit breaker is open), guarded-txn (mod_revision guards + op ids), prefix-watch (resumable
 * watch, typed compaction), prefix-mirror (a prefix in memory), and the stores.
 * Traps (measured, see docs/operations.md "HA control plane"): etcd3 has no call deadline by default,
 * resumes a broken watch past history it had not yet delivered, silently ends a watch from a
 * compacted revision, retries txns whose first attempt may have committed, and returns every int64
 * (revisions) as a decimal string.
 */
export { EtcdConnection } from './connection.js';
export { ETCD_DEFAULTS, checkEtcdOptions, parseEndpoints, type EtcdOptions } from './options.js';
export { EtcdTokenStore } from './etcd-token-store.js';
export { EtcdProjectStore } from './etcd-project-store.js';
export { EtcdCatalog } from './etcd-catalog.js';
