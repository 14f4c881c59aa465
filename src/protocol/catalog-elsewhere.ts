import type { ControlClient } from './control-client.js';
import type { ReconnectLoop } from './reconnect-loop.js';
import { ServerElsewhere, TRIAL_HANDSHAKE_MS } from './server-elsewhere.js';

/** What a client following the catalog says of a store outage on its server (a stderr line, a log line). */
export type ElsewhereNotice =
  | { kind: 'moving'; from: string; to: string; why: string }
  /** `failures`: each other server's, when some were tried (none: the list has no other). */
  | { kind: 'staying'; from: string; why: string; failures: string[] };

export interface CatalogElsewhereOptions {
  urls: readonly string[];
  /** A trial connection to `url` with the client's token, bounded by `handshakeTimeoutMs`. */
  connect: (url: string, handshakeTimeoutMs: number) => Promise<ControlClient>;
  /** The client's ReconnectLoop: a move hands its next session over to the server found. */
  loop: ReconnectLoop;
  say: (notice: ElsewhereNotice) => void;
  backoffMs: number;
  backoffMaxMs: number;
}

/**
 * What a client that follows the catalog (`acheron node watch`, WorldFS) does when its server says
 * its control store is lost (`control.store_unavailable`): that server's catalog stops changing, so
 * the client moves to another server of its list whose store answers (ServerElsewhere: its store
 * checked the token to accept the connection), resuming there with `since_seq`; with none (quorum
 * lost everywhere: no server could do better, and nothing changes meanwhile) it stays, said once a
 * session, and looks again after a pause that doubles.
 */
export class CatalogElsewhere {
  #options: CatalogElsewhereOptions;
  #search: ServerElsewhere;
  #stayingSaid = false;
  /** The session was handed over (moving): its end is no loss. Taken by whoever sees that session end (takeMoving). */
  #moving = false;

  constructor(options: CatalogElsewhereOptions) {
    this.#options = options;
    this.#search = new ServerElsewhere({
      urls: options.urls,
      open: (url) => options.connect(url, TRIAL_HANDSHAKE_MS),
      backoffMs: options.backoffMs,
      backoffMaxMs: options.backoffMaxMs,
    });
  }

  /** A session began: what was said and searched for the previous one is over. */
  began(): void {
    this.#stayingSaid = false;
    this.#search.reset();
  }

  /**
   * Whether the session that just ended (however: closed, or failed) was handed over; asked once
   * per session end, so a hand-over whose next session fails does not pass for one again.
   */
  takeMoving(): boolean {
    const moving = this.#moving;
    this.#moving = false;
    return moving;
  }

  stop(): void {
    this.#search.stop();
  }

  /** `control.store_unavailable` on the session to `from`, on `client`. */
  async notice(from: string, client: ControlClient, why: string): Promise<void> {
    const outcome = this.#search.possible ? await this.#search.search(from) : { failures: [] };
    if (outcome === undefined) return;
    if ('client' in outcome) {
      outcome.client.terminate(); // the loop connects anew, with the session's own handlers
      // The session ended meanwhile: the loop goes on as it would have.
      if (!client.isOpen || this.#options.loop.stopped || this.#options.loop.url !== from) return;
      this.#moving = true;
      this.#options.loop.handOver(outcome.url);
      this.#options.say({ kind: 'moving', from, to: outcome.url, why });
      client.terminate(); // at once: a close handshake would wait for a server that may be stuck
      return;
    }
    if (this.#stayingSaid) return;
    this.#stayingSaid = true;
    this.#options.say({ kind: 'staying', from, why, failures: outcome.failures });
  }
}

/**
 * A notice in words: `the control store of <url> is unavailable (<why>); moving to <url>, whose
 * store answers`, or, staying, what that means for the client (`meanwhile`: `no event comes until it is back`).
 */
export function noticeText(notice: ElsewhereNotice, meanwhile: string): string {
  const lost = `the control store of ${notice.from} is unavailable (${notice.why})`;
  if (notice.kind === 'moving') return `${lost}; moving to ${notice.to}, whose store answers`;
  const others = notice.failures.length > 0 ? `; no other server's store answered (${notice.failures.join('; ')})` : '';
  return `${lost}: ${meanwhile}${others}`;
}
