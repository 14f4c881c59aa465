import type { ControlClient } from './control-client.js';
import type { ReconnectLoop } from './reconnect-loop.js';
import { ServerElsewhere } from './server-elsewhere.js';

/**
 * How long a server being tried may take to answer the connection. Longer than the node's bound
 * (which races a grace period): one whose store is lost answers 503 only after its token check gave
 * up, about 3.5 s, and that answer, not a timeout, says what is wrong with it.
 */
const TRIAL_CONNECT_MS = 5_000;
/** The server repeats its notice every 2 s while its store is lost: this long without one, the outage is over. */
export const OUTAGE_OVER_MS = 6_000;

/** What a client following the catalog says of a store outage on its server (a stderr line, a log line). */
export type ElsewhereNotice =
  | { kind: 'moving'; from: string; to: string; why: string }
  /** `failures`: each other server's, when some were tried (none: the list has no other). */
  | { kind: 'staying'; from: string; why: string; failures: string[] }
  /** After `staying`: no notice for OUTAGE_OVER_MS, its store serves again. */
  | { kind: 'back'; from: string };

export interface CatalogElsewhereOptions {
  urls: readonly string[];
  /** A trial connection to `url` with the client's token, bounded by `handshakeTimeoutMs`. */
  connect: (url: string, handshakeTimeoutMs: number) => Promise<ControlClient>;
  /** The client's ReconnectLoop: a move hands its next session over to the server found. */
  loop: ReconnectLoop;
  say: (notice: ElsewhereNotice) => void;
  backoffMs: number;
  backoffMaxMs: number;
  /** How long without a notice ends an outage (OUTAGE_OVER_MS). */
  outageOverMs?: number;
}

/**
 * What a client that follows the catalog (`acheron node watch`, WorldFS) does when its server says
 * its control store is lost (`control.store_unavailable`): that server's catalog stops changing, so
 * the client moves to another server of its list whose store answers (ServerElsewhere: its store
 * checked the token to accept the connection), resuming there with `since_seq`; with none (quorum
 * lost everywhere: no server could do better, and nothing changes meanwhile) it stays, said once an
 * outage, and looks again after a pause that doubles; the end of an outage it said is said too.
 */
export class CatalogElsewhere {
  #options: CatalogElsewhereOptions;
  #search: ServerElsewhere;
  /** `staying` was said for the outage under way; its end (`back`) is said once no notice came for OUTAGE_OVER_MS. */
  #stayingSaid = false;
  /** Fires OUTAGE_OVER_MS after the last notice of an outage said: each notice sets it again. */
  #backTimer: NodeJS.Timeout | undefined;
  /** The session was handed over (moving): its end is no loss. Taken by whoever sees that session end (takeMoving). */
  #moving = false;
  /** Sessions handed over whose requests in flight are still being answered: ended by stop(), not awaited. */
  #retired = new Set<ControlClient>();

  constructor(options: CatalogElsewhereOptions) {
    this.#options = options;
    this.#search = new ServerElsewhere({
      urls: options.urls,
      open: (url) => options.connect(url, TRIAL_CONNECT_MS),
      backoffMs: options.backoffMs,
      backoffMaxMs: options.backoffMaxMs,
    });
  }

  /** A session began: what was said and searched for the previous one is over. */
  began(): void {
    this.#stayingSaid = false;
    clearTimeout(this.#backTimer);
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
    clearTimeout(this.#backTimer);
    this.#search.stop();
    for (const client of this.#retired) client.terminate();
  }

  /** `control.store_unavailable` on the session to `from`, on `client`. */
  async notice(from: string, client: ControlClient, why: string): Promise<void> {
    // Every notice, a search or not (one is not due yet), pushes the end of an outage said further out.
    if (this.#stayingSaid) this.#watchForEnd(from, client);
    const outcome = this.#search.possible ? await this.#search.search(from) : { failures: [] };
    if (outcome === undefined) return;
    if ('client' in outcome) {
      outcome.client.terminate(); // the loop connects anew, with the session's own handlers
      // The session ended meanwhile: the loop goes on as it would have.
      if (!client.isOpen || this.#options.loop.stopped || this.#options.loop.url !== from) return;
      this.#moving = true;
      this.#options.loop.handOver(outcome.url);
      this.#options.say({ kind: 'moving', from, to: outcome.url, why });
      // No close handshake, which would wait for a server that may be stuck; requests in flight keep their replies.
      client.retire(`moved to ${outcome.url}`);
      for (const done of [...this.#retired].filter((c) => c.socketClosed)) this.#retired.delete(done);
      this.#retired.add(client);
      return;
    }
    if (this.#stayingSaid) return;
    this.#stayingSaid = true;
    this.#options.say({ kind: 'staying', from, why, failures: outcome.failures });
    this.#watchForEnd(from, client);
  }

  /** Says `back` once the notices stop (the server sends none once its store answers), and a later outage anew. */
  #watchForEnd(from: string, client: ControlClient): void {
    clearTimeout(this.#backTimer);
    this.#backTimer = setTimeout(() => {
      if (!this.#stayingSaid || !client.isOpen) return;
      this.#stayingSaid = false;
      this.#options.say({ kind: 'back', from });
    }, this.#options.outageOverMs ?? OUTAGE_OVER_MS);
    this.#backTimer.unref();
  }
}

/**
 * A notice in words: `the control store of <url> is unavailable (<why>); moving to <url>, whose
 * store answers`, or, staying, what that means for the client (`meanwhile`: `no event comes until it is back`).
 */
export function noticeText(notice: ElsewhereNotice, meanwhile: string): string {
  if (notice.kind === 'back') return `the control store of ${notice.from} is no longer reported unavailable: it serves again`;
  const lost = `the control store of ${notice.from} is unavailable (${notice.why})`;
  if (notice.kind === 'moving') return `${lost}; moving to ${notice.to}, whose store answers`;
  const others = notice.failures.length > 0 ? `; no other server's store answered (${notice.failures.join('; ')})` : '';
  return `${lost}: ${meanwhile}${others}`;
}
