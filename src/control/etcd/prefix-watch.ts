import { GRPCOutOfRangeError, type IWatchResponse, type Watcher } from 'etcd3';
import type { EtcdConnection } from './connection.js';
import { describe } from './failure.js';

/** One key's change, as etcd reported it: `value` undefined for a delete. */
export interface WatchedChange {
  key: string;
  value: Buffer | undefined;
  modRevision: bigint;
}

/** The history a watch needed has been compacted away: the watch has ended; re-list, then watch again. */
export class WatchCompactedError extends Error {
  readonly fromRevision: bigint;

  constructor(prefix: string, fromRevision: bigint) {
    super(`etcd watch on ${prefix}: revision ${fromRevision} has been compacted; re-list and watch from the list's revision`);
    this.fromRevision = fromRevision;
  }
}
Object.defineProperty(WatchCompactedError.prototype, 'name', { value: 'WatchCompactedError', enumerable: false, configurable: true, writable: true });

export interface PrefixWatchHandlers {
  /**
   * Changes in revision order, whole revisions at a time (etcd never splits one across responses);
   * `revision`: every change up to it has now been delivered. Empty on a progress notice.
   */
  changes(changes: WatchedChange[], revision: bigint): void;
  /** Called once, after which the watch delivers nothing more. */
  compacted(error: WatchCompactedError): void;
  /** The stream to etcd broke (`false`, with the cause) or came back (`true`); it resumes by itself. */
  state?(connected: boolean, cause?: Error): void;
}

/** Waits between checks and re-opens after etcd cancelled a watch for a reason other than compaction. */
const RECHECK_MS = 500;
const RECHECK_MAX_MS = 5_000;
const CANCEL_WAIT_MS = 2_000;

/**
 * A watch on every key under a prefix from a given revision, that resumes where it stopped and
 * never dies silently (etcd3 1.1.2 gets both wrong, see docs/operations.md "HA control plane"):
 * - etcd3 resumes a broken stream at the *response header's* revision, which while catching up on
 *   history is the store's head: everything between is skipped. Here the resume revision is always
 *   the last delivered event's revision + 1, set on the watcher before etcd3 reconnects.
 * - A watch whose start revision was compacted is cancelled by etcd, and etcd3 reports only
 *   "Watcher canceled" (the watch just stops when nobody listens for `error`). Here every cancel is
 *   checked with a read at the resume revision: OUT_OF_RANGE "compacted" → `compacted`; otherwise
 *   the watch is opened again.
 */
export class PrefixWatch {
  readonly prefix: string;
  #connection: EtcdConnection;
  #handlers: PrefixWatchHandlers;
  /** Every change up to this revision has been delivered. */
  #seen: bigint;
  #watcher: Watcher | undefined;
  #connected = false;
  #closed = false;

  /** Watches `prefix` (a full key prefix) from `fromRevision` on. */
  constructor(connection: EtcdConnection, prefix: string, fromRevision: bigint, handlers: PrefixWatchHandlers) {
    this.prefix = prefix;
    this.#connection = connection;
    this.#handlers = handlers;
    this.#seen = fromRevision - 1n;
    this.#open();
  }

  /** Every change up to and including this revision has been delivered. */
  get revision(): bigint {
    return this.#seen;
  }

  get isConnected(): boolean {
    return this.#connected;
  }

  async close(): Promise<void> {
    this.#closed = true;
    const watcher = this.#watcher;
    this.#watcher = undefined;
    if (!watcher) return;
    // cancel() waits for the stream; during an outage that can take a reconnect attempt: bounded.
    await Promise.race([watcher.cancel().catch(() => undefined), new Promise((resolve) => setTimeout(resolve, CANCEL_WAIT_MS).unref())]);
  }

  #open(): void {
    // .watcher() rather than .create(): the listeners are in place before it connects.
    const watcher = this.#connection.client
      .watch()
      .prefix(this.prefix)
      .startRevision(String(this.#seen + 1n))
      .watcher();
    this.#watcher = watcher;
    // etcd3 overwrites this from response headers on `connected` and `data` (its own listeners run
    // first); ours put it back before any reconnect can read it.
    const resumeHere = (): void => {
      watcher.request.start_revision = String(this.#seen + 1n);
    };
    watcher.on('connected', () => {
      resumeHere();
      this.#state(true);
    });
    watcher.on('data', (response: IWatchResponse) => {
      this.#deliver(response);
      resumeHere();
    });
    watcher.on('disconnected', (cause: Error) => {
      resumeHere();
      this.#state(false, cause);
    });
    watcher.on('error', (error: Error) => void this.#cancelled(watcher, error));
  }

  #deliver(response: IWatchResponse): void {
    if (response.events.length === 0) {
      // A progress notice: etcd sends them only to watchers that have caught up (mvcc
      // watchableStore.progress), so nothing up to the header's revision is still to come.
      const head = BigInt(response.header.revision);
      if (head > this.#seen) this.#seen = head;
      this.#call(() => this.#handlers.changes([], this.#seen));
      return;
    }
    const changes = response.events.map((event): WatchedChange => ({
      key: event.kv.key.toString('utf8'),
      value: event.type === 'Delete' ? undefined : event.kv.value,
      modRevision: BigInt(event.kv.mod_revision),
    }));
    this.#seen = changes.at(-1)?.modRevision ?? this.#seen;
    this.#call(() => this.#handlers.changes(changes, this.#seen));
  }

  /** A handler that throws is a bug: logged, and the watch goes on (it must not break etcd3's stream). */
  #call(handler: () => void): void {
    try {
      handler();
    } catch (error) {
      this.#connection.log.error({ err: error, prefix: this.prefix }, 'etcd watch handler failed');
    }
  }

  #state(connected: boolean, cause?: Error): void {
    // etcd3 says `disconnected` twice for one broken stream.
    if (connected === this.#connected) return;
    this.#connected = connected;
    this.#call(() => this.#handlers.state?.(connected, cause));
  }

  /** etcd cancelled the watch: compacted (the end) or something else (open it again), never silence. */
  async #cancelled(watcher: Watcher, error: Error): Promise<void> {
    if (this.#watcher !== watcher) return;
    this.#watcher = undefined;
    this.#state(false, error);
    for (let waitMs = RECHECK_MS; !this.#closed; waitMs = Math.min(waitMs * 2, RECHECK_MAX_MS)) {
      const compacted = await this.#isCompacted();
      if (this.#closed) return;
      if (compacted === true) {
        this.#call(() => this.#handlers.compacted(new WatchCompactedError(this.prefix, this.#seen + 1n)));
        return;
      }
      if (compacted === false) {
        this.#connection.log.warn(
          { prefix: this.prefix, from_revision: String(this.#seen + 1n), reason: describe(error) },
          'etcd cancelled a watch: opening it again',
        );
        await new Promise((resolve) => setTimeout(resolve, waitMs));
        if (!this.#closed) this.#open();
        return;
      }
      // etcd did not answer: the check itself is retried.
      await new Promise((resolve) => setTimeout(resolve, waitMs));
    }
  }

  /** Whether the resume revision is compacted; undefined when etcd could not tell now. */
  async #isCompacted(): Promise<boolean | undefined> {
    try {
      await this.#connection.client
        .get(this.prefix)
        .revision(String(this.#seen + 1n))
        .exec();
      return false;
    } catch (error) {
      if (error instanceof GRPCOutOfRangeError) return /compacted/.test(error.message);
      return undefined;
    }
  }
}
