import type { Logger } from 'pino';
import type { ControlClient } from '../protocol/control-client.js';
import type { LeaseRefreshReply } from '../protocol/types.gen.js';

/** How long a server being tried may take to refresh the lease (its store retries for about 5 s before refusing). */
const TRIAL_REFRESH_MS = 6_000;
/** How long the node's own server has to refresh the lease before the search goes on: a store that needs longer is not serving. */
const OWN_REFRESH_MS = 2_000;
/** How long a server being tried may take to answer the connection: a hung one must not hold the search past the grace. */
export const TRIAL_HANDSHAKE_MS = 2_000;

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
export interface Refreshed {
  url: string;
  client: ControlClient;
}

/**
 * The search for another server when the node's own cannot refresh its lease (its store lost: a
 * `control.store_unavailable` notice, or a refresh refused `unavailable`). The node's own server is
 * asked once more first (a notice may come a moment after its store is back); then each other URL
 * of the list in turn is connected to and asked for a refresh; the first that refreshes is the
 * answer, still connected, so the node moves only to a server that serves it, and while every
 * server has lost quorum it keeps the session it has. One search at a time; after one that found
 * nothing (or whose own refresh went through after all), none again for a pause that doubles up to
 * the reconnect backoff's maximum, so a long outage costs a few connections, not a stream of them.
 * `reset()` (a new session) makes the next search immediate.
 */
export class LeaseElsewhere {
  #options: LeaseElsewhereOptions;
  #searching = false;
  #stopped = false;
  /** The connection being tried, ended by `stop()`. */
  #trial: ControlClient | undefined;
  #notBeforeMs = 0;
  #pauseMs: number;

  constructor(options: LeaseElsewhereOptions) {
    this.#options = options;
    this.#pauseMs = options.backoffMs;
  }

  /** Whether there is anywhere else to go: more than one URL. */
  get possible(): boolean {
    return new Set(this.#options.urls).size > 1;
  }

  /** A new session, or a refresh the session's server accepted: the next search may come at once. */
  reset(): void {
    [this.#notBeforeMs, this.#pauseMs] = [0, this.#options.backoffMs];
  }

  /** The node stops: a search under way tries no further server, and the one it is trying is dropped. */
  stop(): void {
    this.#stopped = true;
    this.#trial?.terminate();
  }

  /**
   * Another server than `current` (the session's, on `client`) that refreshed the lease, or
   * undefined: `current` refreshed it after all, none did, or a search is running or not due.
   * `why`: the current server's trouble.
   */
  async search(current: string, client: ControlClient, why: string): Promise<Refreshed | undefined> {
    if (!this.possible || this.#searching || this.#stopped || Date.now() < this.#notBeforeMs) return undefined;
    this.#searching = true;
    try {
      const { urls, log, nodeId } = this.#options;
      const own = await client.request<LeaseRefreshReply>('control.node_lease_refresh', { node_id: nodeId }, OWN_REFRESH_MS).catch(() => undefined);
      if (own) return void this.#pause(); // served after all (a slow store): no search, nor another own refresh, for a while
      const at = urls.indexOf(current);
      const others = [...urls.slice(at + 1), ...urls.slice(0, Math.max(0, at))].filter((url, i, all) => url !== current && all.indexOf(url) === i);
      const failures: string[] = [];
      for (const url of others) {
        if (this.#stopped) return undefined;
        const refreshed = await this.#try(url).catch((error: unknown) => void failures.push(`${url}: ${(error as Error).message}`));
        if (refreshed) return refreshed;
      }
      const pauseMs = this.#pause();
      log.warn(
        { url: current, err: why, others: failures, pause_ms: pauseMs },
        `control store of ${current} unavailable, and no other server refreshed the lease: keeping this session; looking again in ${pauseMs} ms or more`,
      );
      return undefined;
    } finally {
      this.#searching = false;
    }
  }

  /** No search before the pause is over; the next pause is twice as long (up to the maximum). Returns the pause. */
  #pause(): number {
    const pauseMs = this.#pauseMs;
    [this.#notBeforeMs, this.#pauseMs] = [Date.now() + pauseMs, Math.min(this.#options.backoffMaxMs, pauseMs * 2)];
    return pauseMs;
  }

  async #try(url: string): Promise<Refreshed> {
    const client = await this.#options.open(url);
    this.#trial = client;
    try {
      if (this.#stopped) throw new Error('the node is stopping');
      await client.request<LeaseRefreshReply>('control.node_lease_refresh', { node_id: this.#options.nodeId }, TRIAL_REFRESH_MS);
      if (this.#stopped) throw new Error('the node is stopping');
      return { url, client };
    } catch (error) {
      client.terminate();
      throw error;
    } finally {
      this.#trial = undefined;
    }
  }
}
