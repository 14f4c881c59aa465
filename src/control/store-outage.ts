import type { Logger } from 'pino';
import { push } from '../protocol/envelope.js';
import type { ControlConnection } from './connection.js';
import type { ControlStore } from './control-store.js';

/** How long the store must have failed every check before the nodes are told (at most a third of the grace period). */
export const STORE_OUTAGE_NOTICE_MS = 4_000;
/** How often the nodes are told again while the outage lasts (a node that connected meanwhile learns it too). */
const NOTICE_EVERY_MS = 2_000;

export interface StoreOutageOptions {
  /** Its `problem()`: why it cannot serve now, or undefined when it can (the /readyz `store` check). */
  store: Pick<ControlStore, 'problem'>;
  /** This server's connections now. */
  connections: () => Iterable<ControlConnection>;
  offlineGraceMs: number;
  log: Logger;
}

/**
 * Tells this server's nodes and clients (watchers, WorldFS) that its store is lost (`control.store_unavailable`), once it has failed
 * every check for STORE_OUTAGE_NOTICE_MS (or a third of the grace period, if less), then every
 * NOTICE_EVERY_MS while it lasts. The other servers start the grace period of this server's nodes
 * once its etcd registration lapses (a partition from etcd): told in time, a node with other
 * servers in its list moves to one that refreshes its lease, and never shows offline (docs/control-protocol.md,
 * "Leases and offline"); a watcher's catalog would stop changing here, so it moves too. The node moves only once another server has refreshed its lease: when every
 * server lost quorum, it keeps its session here. `check()` runs once a second.
 */
export class StoreOutage {
  #options: StoreOutageOptions;
  #checking = false;
  /** When the checks began to fail; undefined while the store answers. */
  #sinceMs: number | undefined;
  #toldMs = 0;

  constructor(options: StoreOutageOptions) {
    this.#options = options;
  }

  async check(): Promise<void> {
    if (this.#checking) return;
    this.#checking = true;
    try {
      const startedMs = Date.now(); // a check that found the store lost may have waited its whole second for an answer
      const problem = await this.#options.store.problem().catch((error: unknown) => (error as Error).message);
      const now = Date.now();
      if (problem === undefined) {
        if (this.#sinceMs !== undefined && this.#toldMs > 0)
          this.#options.log.info('control store back: the nodes and clients are no longer told it is unavailable');
        [this.#sinceMs, this.#toldMs] = [undefined, 0];
        return;
      }
      this.#sinceMs ??= startedMs;
      const noticeAfterMs = Math.min(STORE_OUTAGE_NOTICE_MS, Math.floor(this.#options.offlineGraceMs / 3));
      if (now - this.#sinceMs < noticeAfterMs || now - this.#toldMs < NOTICE_EVERY_MS) return;
      // Nodes, and the watchers and WorldFS mounts, whose catalog stops changing: not the other servers.
      const clients = [...this.#options.connections()].filter((c) => c.principal.kind !== 'peer');
      if (this.#toldMs === 0)
        this.#options.log.warn(
          { nodes: clients.filter((c) => c.principal.kind === 'node').length, others: clients.filter((c) => c.principal.kind !== 'node').length, err: problem },
          'control store unavailable: telling the nodes and clients here, which move to another server if one can serve',
        );
      this.#toldMs = now;
      const frame = push('control.store_unavailable', { reason: problem.slice(0, 4096), since_ms: this.#sinceMs });
      for (const client of clients) client.send(frame);
    } finally {
      this.#checking = false;
    }
  }
}
