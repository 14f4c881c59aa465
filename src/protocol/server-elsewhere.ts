import type { ControlClient } from './control-client.js';

/** How long a server being tried may take to answer the connection: a hung one must not hold the search for long. */
export const TRIAL_HANDSHAKE_MS = 2_000;

export interface ServerElsewhereOptions {
  /** The `--control-url` list. */
  urls: readonly string[];
  /** A connection to `url` with the client's credentials, given TRIAL_HANDSHAKE_MS to answer. */
  open: (url: string) => Promise<ControlClient>;
  /**
   * What a server must do on that connection to count as serving (a node's: refresh its lease).
   * Without it the connection is enough: the server checked its token in its store to accept it.
   */
  serves?: (client: ControlClient) => Promise<void>;
  /** The pause after a search that found no server, doubling up to `backoffMaxMs`. */
  backoffMs: number;
  backoffMaxMs: number;
}

/** A server of the list that serves, and the connection that showed it. */
export interface Found {
  url: string;
  client: ControlClient;
}

/** No other server served: why each failed, and how long until the next search may run. */
export interface NoneFound {
  failures: string[];
  pauseMs: number;
}

/**
 * The search for another server of the list when the client's own has lost its control store
 * (`control.store_unavailable`): each other URL in turn, from the one after the current, is
 * connected to (and asked to serve, `serves`); the first that does is the answer, still connected,
 * so the client moves only to a server that serves, and while every server has lost quorum it keeps
 * the session it has. One search at a time; after one that found nothing (or that its own server
 * made needless), none again for a pause that doubles up to `backoffMaxMs`, so a long outage costs a
 * few connections, not a stream of them. `reset()` (a new session) makes the next search immediate.
 */
export class ServerElsewhere {
  #options: ServerElsewhereOptions;
  #searching = false;
  #stopped = false;
  /** The connection being tried, ended by `stop()`. */
  #trial: ControlClient | undefined;
  #notBeforeMs = 0;
  #pauseMs: number;

  constructor(options: ServerElsewhereOptions) {
    this.#options = options;
    this.#pauseMs = options.backoffMs;
  }

  /** Whether there is anywhere else to go: more than one URL. */
  get possible(): boolean {
    return new Set(this.#options.urls).size > 1;
  }

  /** A new session, or the own server served again: the next search may come at once. */
  reset(): void {
    [this.#notBeforeMs, this.#pauseMs] = [0, this.#options.backoffMs];
  }

  /** The client stops: a search under way tries no further server, and the one it is trying is dropped. */
  stop(): void {
    this.#stopped = true;
    this.#trial?.terminate();
  }

  /**
   * Another server than `current` that serves, or what none did; undefined when there was no search:
   * none is possible, one is running or not due, or `ownServes` (asked first: a notice may come a
   * moment after the store is back) says the current server serves after all.
   */
  async search(current: string, ownServes: () => Promise<boolean> = async () => false): Promise<Found | NoneFound | undefined> {
    if (!this.possible || this.#searching || this.#stopped || Date.now() < this.#notBeforeMs) return undefined;
    this.#searching = true;
    try {
      if (await ownServes()) return void this.#pause(); // served after all (a slow store): no search, nor another own check, for a while
      const { urls } = this.#options;
      const at = urls.indexOf(current);
      const others = [...urls.slice(at + 1), ...urls.slice(0, Math.max(0, at))].filter((url, i, all) => url !== current && all.indexOf(url) === i);
      const failures: string[] = [];
      for (const url of others) {
        if (this.#stopped) return undefined;
        const found = await this.#try(url).catch((error: unknown) => void failures.push(`${url}: ${(error as Error).message}`));
        if (found) return found;
      }
      return { failures, pauseMs: this.#pause() };
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

  async #try(url: string): Promise<Found> {
    const client = await this.#options.open(url);
    this.#trial = client;
    try {
      if (this.#stopped) throw new Error('the client is stopping');
      await this.#options.serves?.(client);
      if (this.#stopped) throw new Error('the client is stopping');
      return { url, client };
    } catch (error) {
      client.terminate();
      throw error;
    } finally {
      this.#trial = undefined;
    }
  }
}
