import { Failover } from './control-urls.js';

export interface ReconnectOptions {
  /** The `--control-url` list, tried in turn (Failover). */
  urls: readonly string[];
  backoff: { firstMs: number; maxMs: number };
  /** One connection to `url`, from connect to close; calls `succeeded()` once the connection works. */
  session(url: string): Promise<void>;
  /** A session ended by an error (after `failed`, `ended` runs as for any end). Throw to end the loop with it. */
  failed(url: string, error: unknown): void;
  /** After every session, however it ended (unless `failed` threw), stopping included. */
  ended?(): void;
  /** Before each pause (not when stopping), with its length and the server whose session just ended. Throw to end the loop with it. */
  beforePause?(pauseMs: number, url: string): void;
  /** The pause's timer does not keep the process alive. */
  unref?: boolean;
}

/**
 * A client's one connection to the control server, kept up: a session per connection, and after
 * each one ends the next server of the list after Failover's pause (jittered, then backoff once
 * every server failed in a row; a working connection resets it). `stop()` cuts a pause short.
 */
export class ReconnectLoop {
  #options: ReconnectOptions;
  #failover: Failover;
  #stopped = false;
  #wake: (() => void) | undefined;
  #running: Promise<void> | undefined;
  /** Where the session ending now hands over to (handOver). */
  #handOverTo: string | undefined;

  constructor(options: ReconnectOptions) {
    this.#options = options;
    this.#failover = new Failover(options.urls, options.backoff);
  }

  /** The server in use, or tried next. */
  get url(): string {
    return this.#failover.current;
  }

  get urls(): readonly string[] {
    return this.#failover.urls;
  }

  /** Every server failed in turn since the last working connection. */
  get roundFailed(): boolean {
    return this.#failover.roundFailed;
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  /** The current connection works: the next failure starts from the first pause again. */
  succeeded(): void {
    this.#failover.succeeded();
  }

  /** Starts the loop once; resolves when it stops, rejects with what a hook threw. */
  start(): Promise<void> {
    this.#running ??= this.#run();
    return this.#running;
  }

  /** A pause ends at once, and the next failure starts from the first pause again (what failed may work now: new credentials). */
  wake(): void {
    this.#failover.succeeded();
    this.#wake?.();
  }

  /** The current session is about to end by the owner's choice: the next one goes to `url` at once, with no pause and no failure counted (nor `beforePause`). */
  handOver(url: string): void {
    this.#handOverTo = url;
  }

  /** No new session; a pause ends at once. The owner closes its connection, then awaits start()'s promise. */
  stop(): void {
    this.#stopped = true;
    this.#wake?.();
  }

  async #run(): Promise<void> {
    const o = this.#options;
    while (!this.#stopped) {
      const url = this.#failover.current;
      try {
        await o.session(url);
      } catch (error) {
        o.failed(url, error);
      }
      o.ended?.();
      if (this.#stopped) break;
      const handOverTo = this.#handOverTo;
      this.#handOverTo = undefined;
      if (handOverTo !== undefined) {
        this.#failover.moveTo(handOverTo);
        continue;
      }
      const pause = this.#failover.failed();
      o.beforePause?.(pause, url);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, pause);
        if (o.unref) timer.unref();
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }
}
