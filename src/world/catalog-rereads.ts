import type { Logger } from 'pino';
import type { ControlClient } from '../protocol/control-client.js';
import type { ProtocolError } from '../protocol/errors.js';
import type { SessionAttachReply } from '../protocol/types.gen.js';
import { attachAgain, attachNewToken, isSessionRefusal, type Attach } from './catalog-requests.js';

/** The catalog's options they use: `backoffMaxMs` is how long a refused session waits before it tries again. */
interface RereadOptions {
  attach?: Attach | undefined;
  log: Logger;
  backoffMaxMs?: number | undefined;
}

/** What the re-reads of one connection need of the WorldCatalog session that owns it. */
export interface RereadSession {
  client(): ControlClient;
  /** A new watch and a full read, shown with `grant`; resolves to the count of nodes read. */
  readAll(grant: SessionAttachReply | undefined): Promise<number>;
  /** The catalog answers again (true), or ENOTCONN with this reason. */
  available(up: true | string): void;
  /** Gives the connection up (the next reads everything again). */
  resync(why: string): void;
}

/**
 * The session attached and the catalog read again on one connection, one after another: when the
 * server ended the watch (the project changed, or the watch fell behind), and when the project token
 * file holds a new token. On the same connection because the files opened through it need it (it
 * is their relay session: a new one would make them ESTALE). A session refused meanwhile (its token
 * rotated, the file not rewritten yet), or on a new connection of a live mount (`first`), keeps the
 * connection too: ENOTCONN, tried again every `backoffMaxMs` (10 s), and at once when the file changes.
 */
export class Rereads {
  readonly #options: RereadOptions;
  readonly #session: RereadSession;
  #queue = Promise.resolve();
  #retry: NodeJS.Timeout | undefined;

  constructor(options: RereadOptions, session: RereadSession) {
    [this.#options, this.#session] = [options, session];
  }

  /** The server ended the watch: a project token it refuses, the session attaches without (attachAgain). */
  watchEnded(why: string): void {
    this.#enqueue(why, 'watch ended');
  }

  /** The project token file changed: refused, the session stays as it was attached (attachNewToken). */
  newToken(why: string): void {
    this.#enqueue(why, 'new token');
  }

  /**
   * The connection's first attach and `read` (a resumed watch or a full read; resolves to whether it
   * resumed). Once the mount is live it attaches as a live connection does (attachAgain: a project
   * token refused, without it), and a session refused keeps the connection (undefined);
   * at the first start a refusal is start()'s to report (nothing is mounted yet).
   */
  async first(isLive: boolean, read: (grant: SessionAttachReply | undefined) => Promise<boolean>): Promise<boolean | undefined> {
    const { log, attach } = this.#options;
    const client = this.#session.client();
    try {
      return await read(isLive ? await attachAgain(attach, client, log) : await attach?.(client));
    } catch (error) {
      if (!isLive || !isSessionRefusal(error) || !client.isOpen) throw error;
      this.#refused(error, 'the session was refused on a new connection');
      return undefined;
    }
  }

  /** The session was refused (its first attach or read on this connection, or a re-read): ENOTCONN, tried again later. */
  #refused(error: ProtocolError, why: string): void {
    this.#session.available(`${error.code}: ${error.message}`);
    this.#options.log.warn({ err: error.message }, 'the session may not read the catalog now: ENOTCONN, on the same connection, until it may');
    clearTimeout(this.#retry);
    this.#retry = setTimeout(() => this.#enqueue(why, 'refused'), this.#options.backoffMaxMs ?? 10_000);
  }

  /** The connection ended. */
  stop(): void {
    clearTimeout(this.#retry);
  }

  #enqueue(why: string, kind: Reread): void {
    this.#queue = this.#queue.then(() => this.#readAgain(why, kind));
  }

  async #readAgain(why: string, kind: Reread): Promise<void> {
    const { log, attach } = this.#options;
    const client = this.#session.client();
    if (!client.isOpen) return; // the connection is gone: the next one reads what it must
    log.info({ reason: why }, STARTING[kind]);
    try {
      const attached = kind === 'new token' ? await attachNewToken(attach, client, log) : { grant: await attachAgain(attach, client, log) };
      if (attached === undefined) return;
      const nodes = await this.#session.readAll(attached.grant);
      clearTimeout(this.#retry);
      this.#session.available(true);
      log.info({ nodes }, kind === 'new token' ? 'attached again with the new project token; following events' : 'catalog read again; following events');
    } catch (error) {
      if (!isSessionRefusal(error) || !client.isOpen) return this.#session.resync(`reading the catalog again: ${(error as Error).message}`);
      this.#refused(error, why);
    }
  }
}

/** Why the session is attached and the catalog read again. */
type Reread = 'watch ended' | 'new token' | 'refused';

const STARTING: Record<Reread, string> = {
  'watch ended': 'the server ended the watch: reading the catalog again',
  'new token': 'attaching the project session again',
  refused: 'trying the refused session again',
};
