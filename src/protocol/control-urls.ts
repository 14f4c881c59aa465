/** ws:// or wss:// with a host, and a port in range if it has one (the WHATWG parser checks that). */
function isWebSocketUrl(url: string): boolean {
  if (!/^wss?:\/\/[^/\s]+/.test(url)) return false;
  try {
    return new URL(url).hostname !== '';
  } catch {
    return false;
  }
}

/**
 * `--control-url` lists (several servers on one store, issue 11): comma-separated, repeated, or
 * both; each `ws://` or `wss://`. Throws a TypeError naming the option and the bad entry.
 */
export function parseControlUrls(given: string | readonly string[], option = '--control-url'): string[] {
  const urls = (typeof given === 'string' ? [given] : given)
    .flatMap((item) => item.split(','))
    .map((url) => url.trim())
    .filter(Boolean);
  if (urls.length === 0) throw new TypeError(`${option}: expected ws://host:port or wss://host:port (several: comma-separated or repeated)`);
  for (const url of urls) {
    const port = /^wss?:\/\/(?:\[[^\]]*\]|[^/:\s]*):(\d+)(?:[/?#]|$)/.exec(url)?.[1];
    if (port !== undefined && Number(port) > 65535) throw new TypeError(`${option} ${JSON.stringify(url)}: port ${port} is out of range (1-65535)`);
    if (!isWebSocketUrl(url)) throw new TypeError(`${option} ${JSON.stringify(url)}: expected ws://host:port or wss://host:port`);
  }
  return urls;
}

/** Pause between servers of one round: a little jitter, so nodes leaving a dead server do not arrive as one burst. */
const NEXT_SERVER_JITTER_MS = 250;

/**
 * Which server to try next, and when: a failure (to connect, or of a connection that was up) moves
 * to the next URL after a short jittered pause; once every URL failed in a row, the pause is the
 * backoff, doubling up to its maximum and jittered down to half (× 0.5–1), so the maximum is never
 * passed (an operator's `--reconnect-backoff-max-ms` is a bound). A connection that works resets it.
 */
export class Failover {
  readonly urls: readonly string[];
  #index = 0;
  #failedInRow = 0;
  #backoffMs: number;
  #delayMs: number;
  #maxMs: number;

  constructor(urls: readonly string[], backoff: { firstMs: number; maxMs: number }) {
    if (urls.length === 0) throw new TypeError('Failover: no URL');
    this.urls = urls;
    // A first pause above the maximum (`--reconnect-backoff-ms` > `-max-ms`) is the maximum too.
    this.#backoffMs = Math.min(backoff.firstMs, backoff.maxMs);
    this.#delayMs = this.#backoffMs;
    this.#maxMs = backoff.maxMs;
  }

  get current(): string {
    return this.urls[this.#index] as string;
  }

  /** The last failure completed a round: every URL failed in turn since the last success. */
  get roundFailed(): boolean {
    return this.#failedInRow > 0 && this.#failedInRow % this.urls.length === 0;
  }

  /** The current URL failed: moves to the next; returns how long to wait before trying it. */
  failed(): number {
    this.#index = (this.#index + 1) % this.urls.length;
    this.#failedInRow++;
    if (this.#failedInRow % this.urls.length !== 0) return Math.round(Math.random() * Math.min(NEXT_SERVER_JITTER_MS, this.#backoffMs));
    const delay = Math.round(this.#delayMs * (0.5 + Math.random() / 2));
    this.#delayMs = Math.min(this.#maxMs, this.#delayMs * 2);
    return delay;
  }

  /** The next connection goes to `url` (one of the list), with no failure counted: a move the client chose. */
  moveTo(url: string): void {
    const index = this.urls.indexOf(url);
    if (index >= 0) this.#index = index;
  }

  /** A connection to the current URL works. */
  succeeded(): void {
    this.#failedInRow = 0;
    this.#delayMs = this.#backoffMs;
  }
}
