import { join } from 'node:path';
import type { Logger } from 'pino';
import type { EventKind } from '../protocol/types.gen.js';
import { ProtocolError } from '../protocol/errors.js';
import { AppendLog } from '../store/append-log.js';
import { closeAndThrow } from '../store/closing.js';
import { makeDirectory } from '../store/make-directory.js';
import { CatalogEvent, type EventSource } from './catalog-event.js';
import type { EventStream } from './catalog-store.js';
import { EventRing, RING_CAPACITY, type RetainedWindow } from './event-ring.js';
import { EVENT_LOG_FILE, headLine } from './event-log-files.js';
import { lostLine, readHistory, type EventRecord, type History } from './event-log-history.js';
import { EventLogRotation, type Checkpoint } from './event-log-rotation.js';
import { RepeatedFailure } from '../store/repeated-failure.js';

export type { EventKind, CatalogEvent, EventRecord, Checkpoint };
export { EVENT_LOG_FILE };

export interface EventLogOptions {
  dir: string;
  log: Logger;
  /** In-memory replay ring (default 1024). */
  ringCapacity?: number;
  /** Rotate above this many bytes; 0 = never (ACHERON_NODE_SERVICE_EVENT_LOG_ROTATE_MAX_BYTES). */
  rotateMaxBytes?: number;
  /** Archives kept (ACHERON_NODE_SERVICE_EVENT_LOG_ARCHIVE_KEEP). */
  archiveKeep?: number;
}

type EventLogSettings = Required<Omit<EventLogOptions, 'log'>> & { log: Logger };

const OPEN = Buffer.from('{');
const NEWLINE = Buffer.from('\n');

/**
 * The catalog's write-ahead log (SPEC §6): every event gets the next `seq`, is appended and
 * fdatasync'd (group commit) before anyone sees it, and stays in a bounded ring for replay. A
 * file above the size limit is renamed aside and a new one started with a `head` line carrying
 * the last seq, so a seq is never reused whatever was pruned; in the background the catalog then
 * checkpoints (snapshot) and the renamed file becomes a gzip archive. At start-up the ring is
 * refilled from disk and the events not yet archived are handed to the catalog.
 *
 * A seq is handed out only to an event being written, so a batch that fails leaves no gap: the
 * file is cut back to its last good length (nothing of the batch stays for a later start to
 * apply) and its writers are told nothing changed. A torn last line at start-up (a crash inside
 * a write, or storage that lost what it had synced) is cut off and replaced by a `lost` line: its
 * seq, which a watcher may have seen, is never handed out again, and the history restarts after
 * it, so a watcher resuming from before gets `resync_required` instead of a silent gap.
 *
 * Beside it: the file names and `head` line (`event-log-files.ts`), reading the files back at
 * start-up (`event-log-history.ts`), rotation and archiving (`event-log-rotation.ts`).
 */
export class EventLog implements EventStream {
  readonly path: string;
  readonly ringCapacity: number;
  #options: EventLogSettings;
  /** Its length is up to its last durable event: a failed append is cut back to it. */
  #file!: AppendLog<Pending>;
  #ring: EventRing;
  #unarchived: EventRecord[];
  #rotation: EventLogRotation;
  /** Every append fails while the disk is full: logged once, then once a minute. */
  #appendFailure: RepeatedFailure;
  /** The last seq given to a batch written or being written (the ring's head once it is answered). */
  #handedOut: number;

  private constructor(options: EventLogSettings, history: History) {
    this.#options = options;
    this.path = join(options.dir, EVENT_LOG_FILE);
    this.ringCapacity = options.ringCapacity;
    this.#ring = new EventRing(options.ringCapacity, history.ring, history.head);
    this.#handedOut = history.head;
    this.#unarchived = history.unarchived;
    this.#appendFailure = new RepeatedFailure(
      options.log,
      'event log: an append failed; its writers were told nothing changed',
      'event log: appends work again',
    );
    this.#rotation = new EventLogRotation({ dir: options.dir, path: this.path, archiveKeep: options.archiveKeep, log: options.log }, history.rotated);
  }

  static async open(options: EventLogOptions): Promise<EventLog> {
    const full = { ringCapacity: RING_CAPACITY, rotateMaxBytes: 8 << 20, archiveKeep: 8, ...options };
    await makeDirectory(full.dir);
    const path = join(full.dir, EVENT_LOG_FILE);
    const history = await readHistory(full.dir, full.ringCapacity);
    for (const problem of history.problems) full.log.error({ path }, `event log: ${problem}`);
    const log = new EventLog(full, history);
    log.#file = await AppendLog.open<Pending>(path, (batch) => log.#write(batch));
    if (log.#file.bytes === 0) await log.#file.write([headLine(history.head)]).catch((error: unknown) => closeAndThrow(log.#file, error));
    return log;
  }

  /**
   * The last seq that is durable and told to the listeners (0 before any event). Watches report
   * it as head_seq: a seq merely handed out may still be in flight, and a watcher resuming after
   * it would miss that event (or, after a crash, resume after a seq that never existed).
   */
  get headSeq(): number {
    return this.#ring.head;
  }

  /** The head: seqs go to events only, one each (a loss at start-up spends a few, once). */
  get lastEventSeq(): number {
    return this.#ring.head;
  }

  get retainedAfter(): number {
    return this.#ring.retainedAfter;
  }

  /** Every event is delivered as it is made durable: nothing to wait for. */
  async reach(): Promise<void> {}

  /** Undefined while appends work; else why they cannot (a failed append is still in the file). */
  get damage(): Error | undefined {
    return this.#file.damage;
  }

  /**
   * Undefined while the last append was made durable, else why not, naming the file (the /readyz
   * `store` check). After a failed one it first probes whether an append would be now (AppendLog.probe).
   */
  async durabilityProblem(): Promise<string | undefined> {
    await this.#file.probe();
    const failure = this.#file.failure;
    return failure && `the event log ${this.path} could not make a change durable: ${failure.message}`;
  }

  /** Events in the ring, oldest first. */
  retained(): readonly CatalogEvent[] {
    return this.#ring.retained();
  }

  /**
   * Once, at start-up: `seq` is the highest seq another durable file recorded (`source`: the catalog's
   * journal). A log behind it (lost, emptied, an older copy) would hand those seqs out again (SPEC §6:
   * never reused): a `lost` line spends them, watchers resuming from before get resync_required, and
   * it is said at warn.
   */
  async raiseFloor(seq: number, source: string): Promise<void> {
    const head = this.#ring.head;
    if (seq <= head) return;
    await this.#file.write([lostLine(head, seq)]);
    this.#ring.restart(seq, `the event log was behind ${source}`);
    this.#handedOut = seq;
    this.#options.log.warn(
      { path: this.path, log_head_seq: head, floor_seq: seq, source },
      `event log: it ends at seq ${head} but ${source} recorded seq ${seq} (the log was lost, emptied or replaced by an older copy); new events start after seq ${seq}`,
    );
  }

  /**
   * Once, at start-up: every event in the files not yet archived (the current one and any
   * rotated out before a crash), oldest first. The catalog replays those its snapshot lacks.
   */
  takeUnarchived(): EventRecord[] {
    const events = this.#unarchived;
    this.#unarchived = [];
    return events;
  }

  /**
   * Registers the catalog's checkpoint, run before a rotated file is archived; files a crash
   * left rotated but not archived are archived now.
   */
  setCheckpoint(checkpoint: Checkpoint): void {
    this.#rotation.setCheckpoint(checkpoint, this.#ring.head);
  }

  window(): RetainedWindow {
    return this.#ring.window();
  }

  /** Called with each event once it is durable, in seq order. */
  onEvent(listener: (event: CatalogEvent) => void): void {
    this.#ring.onEvent(listener);
  }

  /** The file log loses no event under a running server. */
  onGap(): void {}

  /**
   * Makes the event durable with the next seq, then calls `apply` and the listeners, in seq
   * order and in one synchronous step: what `apply` changes is always exactly the state after
   * the events up to headSeq, so a checkpoint taken at any moment is consistent. Rejects with
   * `unavailable` when the event could not be made durable; then nothing changed.
   */
  append(event: EventSource, apply?: (event: CatalogEvent) => void): Promise<CatalogEvent> {
    return new Promise<CatalogEvent>((resolve, reject) => {
      this.#file.queue({ event, apply, resolve, reject });
      // Its writer hears from #write; a failure here is one of #write itself.
      this.#file.flush().catch((error: unknown) => this.#options.log.error({ err: error }, 'event log: a batch failed'));
    });
  }

  async #write(batch: Pending[]): Promise<void> {
    // Seqs are given at the write, in order: a batch that fails gives none away. The batch before
    // may still be answering its writers (see below), so they count from the last seq handed out.
    const first = this.#handedOut + 1;
    const events = batch.map((p, index) => new CatalogEvent(first + index, p.event));
    this.#handedOut += batch.length;
    const parts = events.flatMap((event) => [OPEN, event.head, event.body, NEWLINE]);
    try {
      await this.#file.write(parts);
      this.#appendFailure.succeeded();
    } catch (error) {
      // Batches are written one after another: nothing after this one was handed out.
      this.#handedOut = first - 1;
      const failure = new ProtocolError('unavailable', `the event log could not make the change durable (${(error as Error).message}); nothing changed`, {
        cause: error,
      });
      this.#appendFailure.failed(error, { events: batch.length, cut_back: this.#file.damage === undefined });
      for (const p of batch) p.reject(failure);
      return;
    }
    const rotating = this.#options.rotateMaxBytes > 0 && this.#file.bytes > this.#options.rotateMaxBytes;
    // The next batch goes to the disk while this one is fanned out (a loaded server's event loop is
    // busy with it for about a millisecond per event): its fdatasync no longer waits for the fan-out.
    // Not before a rotation, which swaps the file.
    if (!rotating) this.#file.commitQueuedNow();
    batch.forEach((p, index) => {
      const event = events[index] as CatalogEvent;
      this.#ring.add(event);
      // The event is durable: whatever a listener does, the writer gets its answer and the batch goes on.
      try {
        p.apply?.(event);
        this.#ring.publish(event);
      } catch (error) {
        this.#options.log.error({ err: error, seq: event.seq }, 'event log: applying or fanning out an event failed');
      }
      p.resolve(event);
    });
    // A rotation that fails is logged; the events it followed are durable and acknowledged already.
    if (rotating)
      await this.#rotation.rotate(this.#file, this.#ring.head).catch((error: unknown) => this.#options.log.error({ err: error }, 'event log: rotation failed'));
  }

  async close(): Promise<void> {
    this.#rotation.hurry();
    await this.#file.flush();
    await this.#rotation.idle();
    await this.#file.close();
    // Appends that came meanwhile were written by the close, and may have rotated the file once more.
    await this.#rotation.idle();
  }
}

/** An event waiting for its batch, and its writer. */
interface Pending {
  event: EventSource;
  apply: ((event: CatalogEvent) => void) | undefined;
  resolve(event: CatalogEvent): void;
  reject(error: Error): void;
}
