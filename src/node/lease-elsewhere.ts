import type { Logger } from 'pino';
import type { ControlClient } from '../protocol/control-client.js';
import type { LeaseRefreshReply } from '../protocol/types.gen.js';
import { ServerElsewhere, type Found } from '../protocol/server-elsewhere.js';

export { TRIAL_HANDSHAKE_MS } from '../protocol/server-elsewhere.js';

/** How long a server being tried may take to refresh the lease (its store retries for about 5 s before refusing). */
const TRIAL_REFRESH_MS = 6_000;
/** How long the node's own server has to refresh the lease before the search goes on: a store that needs longer is not serving. */
const OWN_REFRESH_MS = 2_000;

export interface LeaseElsewhereOptions {
  urls: readonly string[];
  nodeId: string;
  /** A connection to `url` as this node (its credentials), given TRIAL_HANDSHAKE_MS to answer. */
  open: (url: string) => Promise<ControlClient>;
  /** The pause after a search that found no server, doubling up to `backoffMaxMs` (the node's reconnect backoff). */
  backoffMs: number;
  backoffMaxMs: number;
  log: Logger;
}

/** A server of the list whose store refreshed the node's lease, and the connection that did it. */
export type Refreshed = Found;

/**
 * The search for another server when the node's own cannot refresh its lease (its store lost: a
 * `control.store_unavailable` notice, or a refresh refused `unavailable`): ServerElsewhere, where a
 * server serves when it refreshes the lease, and the node's own server is asked once more first.
 */
export class LeaseElsewhere {
  #options: LeaseElsewhereOptions;
  #search: ServerElsewhere;

  constructor(options: LeaseElsewhereOptions) {
    this.#options = options;
    this.#search = new ServerElsewhere({ ...options, serves: async (client) => void (await this.#refresh(client, TRIAL_REFRESH_MS)) });
  }

  #refresh(client: ControlClient, ms: number): Promise<LeaseRefreshReply> {
    return client.request<LeaseRefreshReply>('control.node_lease_refresh', { node_id: this.#options.nodeId }, ms);
  }

  get possible(): boolean {
    return this.#search.possible;
  }

  reset(): void {
    this.#search.reset();
  }

  stop(): void {
    this.#search.stop();
  }

  /**
   * Another server than `current` (the session's, on `client`) that refreshed the lease, or
   * undefined: `current` refreshed it after all, none did, or a search is running or not due.
   * `why`: the current server's trouble; `isCurrent`: false once the session left `client` (a search
   * outlives it; nothing is said of a server the node has left).
   */
  async search(current: string, client: ControlClient, why: string, isCurrent: () => boolean): Promise<Refreshed | undefined> {
    const outcome = await this.#search.search(current, () =>
      this.#refresh(client, OWN_REFRESH_MS).then(
        () => true,
        () => false,
      ),
    );
    if (outcome === undefined || 'client' in outcome) return outcome;
    if (!isCurrent()) return undefined;
    this.#options.log.warn(
      { url: current, err: why, others: outcome.failures, pause_ms: outcome.pauseMs },
      `control store of ${current} unavailable, and no other server refreshed the lease: keeping this session; looking again in ${outcome.pauseMs} ms or more`,
    );
    return undefined;
  }
}
