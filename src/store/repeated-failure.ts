import type { Logger } from 'pino';

/** How often a failure that keeps coming back is logged again. */
export const REPEATED_FAILURE_LOG_EVERY_MS = 60_000;

/**
 * A failure met again and again (every housekeeping tick, every append while the disk is full):
 * logged once at error with its stack, then at most once a minute at warn with its message and how
 * often it came back meanwhile; a different message is logged anew, and the first success after
 * it at info. Logged each time, it buried the log in two stacks a second that said nothing new.
 */
export class RepeatedFailure {
  readonly #log: Logger;
  readonly #failedMessage: string;
  readonly #recoveredMessage: string;
  /** The failure's message while it lasts, else undefined. */
  #message: string | undefined;
  #loggedMs = 0;
  #sinceLogged = 0;
  #failures = 0;
  readonly #now: () => number;

  constructor(log: Logger, failedMessage: string, recoveredMessage: string, now: () => number = Date.now) {
    this.#log = log;
    this.#now = now;
    this.#failedMessage = failedMessage;
    this.#recoveredMessage = recoveredMessage;
  }

  /** Runs `task`, which never rejects: its failure is logged here. */
  async run(task: () => Promise<unknown>): Promise<void> {
    await task().then(
      () => this.succeeded(),
      (error: unknown) => this.failed(error),
    );
  }

  failed(error: unknown, fields: Record<string, unknown> = {}): void {
    const message = error instanceof Error ? error.message : String(error);
    const now = this.#now();
    this.#failures += 1;
    if (message !== this.#message) {
      [this.#message, this.#loggedMs, this.#sinceLogged] = [message, now, 0];
      this.#log.error({ ...fields, err: error }, this.#failedMessage);
      return;
    }
    this.#sinceLogged += 1;
    if (now - this.#loggedMs < REPEATED_FAILURE_LOG_EVERY_MS) return;
    this.#log.warn(
      { ...fields, error: message, repeated: this.#sinceLogged },
      `${this.#failedMessage} (again, ${this.#sinceLogged} times since it was last logged)`,
    );
    [this.#loggedMs, this.#sinceLogged] = [now, 0];
  }

  succeeded(): void {
    if (this.#message === undefined) return;
    this.#log.info({ failures: this.#failures }, `${this.#recoveredMessage} (after ${this.#failures} failure${this.#failures === 1 ? '' : 's'})`);
    [this.#message, this.#failures, this.#sinceLogged] = [undefined, 0, 0];
  }
}
