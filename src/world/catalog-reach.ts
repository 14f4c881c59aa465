import { FsError } from '../errors/errno.js';
import type { ControlClient } from '../protocol/control-client.js';

/**
 * How long a relay waits for the next connection while the mount moves to another server: a move
 * takes tens of milliseconds (connect, attach, resume), so one that takes longer has failed.
 */
export const MOVE_WAIT_MS = 2000;

/**
 * Whether a WorldFS mount shows its catalog now (below its root everything answers ENOTCONN while
 * it does not), since when its catalog last changed, why it is out of reach, and the connection
 * relays go out on: the current one once its session is attached (a user's relays need that).
 * During a move the catalog stays shown with no connection to send on for the tens of
 * milliseconds until the next server resumes; a relay then waits for that connection, up to
 * MOVE_WAIT_MS, instead of answering ENOTCONN.
 */
export class CatalogReach {
  #shown = false;
  #changedMs = Date.now();
  #why = 'not connected yet';
  #relayLink: ControlClient | undefined;
  #waiting = new Set<(client: ControlClient | undefined) => void>();

  get shown(): boolean {
    return this.#shown;
  }

  get changedMs(): number {
    return this.#changedMs;
  }

  /** Why the catalog is not available now (for ENOTCONN messages and logs). */
  get why(): string {
    return this.#why;
  }

  /** The last reason the control server could not be reached, kept for when the catalog goes out of reach. */
  set why(why: string) {
    this.#why = why;
  }

  changed(): void {
    this.#changedMs = Date.now();
  }

  /** The catalog is shown (true) or not, and why not: relays waiting for the next connection are told. */
  available(up: true | string): void {
    [this.#shown, this.#changedMs] = [up === true, Date.now()];
    if (up !== true) this.#why = up;
    this.#settle(up === true ? this.#relayLink : undefined);
  }

  /** The session on `client` is attached (relays may go out on it), or (undefined) the connection ended. */
  attached(client: ControlClient | undefined): void {
    this.#relayLink = client;
    if (client && this.#shown) this.#settle(client);
  }

  /** The connection to relay on: at once, after a wait during a move, or ENOTCONN. */
  async relayClient(): Promise<ControlClient> {
    const client = this.#relayLink ?? (this.#shown ? await this.#next() : undefined);
    if (!this.#shown || !client) throw new FsError('ENOTCONN', `the control server is out of reach: ${this.#why}`);
    return client;
  }

  #next(): Promise<ControlClient | undefined> {
    return new Promise((resolve) => {
      const done = (client: ControlClient | undefined): void => {
        clearTimeout(timer);
        this.#waiting.delete(done);
        resolve(client);
      };
      const timer = setTimeout(done, MOVE_WAIT_MS, undefined);
      this.#waiting.add(done);
    });
  }

  #settle(client: ControlClient | undefined): void {
    for (const done of [...this.#waiting]) done(client);
  }
}
