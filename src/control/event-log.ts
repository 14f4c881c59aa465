import { createReadStream, createWriteStream } from 'node:fs';
import { link, mkdir, open, readdir, readFile, rename, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { createGzip, gunzip as gunzipCallback } from 'node:zlib';
import type { Logger } from 'pino';
import type { CatalogEventPayload, EventKind } from '../protocol/types.gen.js';
import { ProtocolError } from '../protocol/errors.js';
import { AppendLog } from '../store/append-log.js';
import { syncDir, writeAll } from '../store/atomic-file.js';
import { CatalogEvent, type EventSource } from './catalog-event.js';
import type { EventStream } from './catalog-store.js';
import { EventRing, RING_CAPACITY, type RetainedWindow } from './event-ring.js';

const gunzip = promisify(gunzipCallback);

export type { EventKind, CatalogEvent };

/** An event as read back from disk, for the catalog to rebuild itself (SPEC §6: snapshot + log). */
export type EventRecord = CatalogEventPayload;

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

/**
 * Makes everything the log holds up to the returned seq durable elsewhere (the catalog's
 * snapshot), so the log files holding only older events may be archived and pruned.
 */
export type Checkpoint = () => Promise<number>;

export const EVENT_LOG_FILE = 'node-service-events.ndjson';
const ARCHIVE = /^node-service-events-(\d+)\.ndjson\.gz$/;
/** A file rotated out and not yet archived: its events may still be needed to rebuild the catalog. */
const ROTATED = /^node-service-events-(\d+)\.ndjson$/;
/** Archives are for the record and for replay: speed matters more than size here. */
const ARCHIVE_GZIP_LEVEL = 1;
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
 */
export class EventLog implements EventStream {
  readonly path: string;
  readonly ringCapacity: number;
  #options: EventLogSettings;
  /** Its length is up to its last durable event: a failed append is cut back to it. */
  #file!: AppendLog<Pending>;
  #ring: EventRing;
  /** Why the file may hold bytes past its durable length (a failed append that could not be cut back yet); nothing is appended until it is. */
  #damage: Error | undefined;
  #unarchived: EventRecord[];
  #leftovers: string[];
  #checkpoint: Checkpoint | undefined;
  /** The seq the last checkpoint covered. */
  #checkpointed = 0;
  /** Archiving runs one file at a time, behind the appends. */
  #archiving: Promise<void> = Promise.resolve();
  #lastRotationMs = 0;

  private constructor(options: EventLogSettings, history: History) {
    this.#options = options;
    this.path = join(options.dir, EVENT_LOG_FILE);
    this.ringCapacity = options.ringCapacity;
    this.#ring = new EventRing(options.ringCapacity, history.ring, history.head);
    this.#unarchived = history.unarchived;
    this.#leftovers = history.rotated;
  }

  static async open(options: EventLogOptions): Promise<EventLog> {
    const full = { ringCapacity: RING_CAPACITY, rotateMaxBytes: 8 << 20, archiveKeep: 8, ...options };
    await mkdir(full.dir, { recursive: true });
    const path = join(full.dir, EVENT_LOG_FILE);
    const history = await readHistory(full.dir, full.ringCapacity);
    for (const problem of history.problems) full.log.error({ path }, `event log: ${problem}`);
    const log = new EventLog(full, history);
    log.#file = await AppendLog.open<Pending>(path, (batch) => log.#write(batch));
    if (log.#file.bytes === 0) await log.#file.write([headLine(history.head)]);
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

  get retainedAfter(): number {
    return this.#ring.retainedAfter;
  }

  /** Every event is delivered as it is made durable: nothing to wait for. */
  async reach(): Promise<void> {}

  /** Undefined while appends work; else why they cannot (a failed append is still in the file). */
  get damage(): Error | undefined {
    return this.#damage;
  }

  /** Events in the ring, oldest first. */
  retained(): readonly CatalogEvent[] {
    return this.#ring.retained();
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
    this.#checkpoint = checkpoint;
    const head = this.#ring.head;
    for (const path of this.#leftovers) this.#queueArchive(path, head);
    this.#leftovers = [];
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
      // A rotation that fails is logged; the events it followed are durable and acknowledged already.
      this.#file.flush().catch((error: unknown) => this.#options.log.error({ err: error }, 'event log: rotation failed'));
    });
  }

  async #write(batch: Pending[]): Promise<void> {
    // Seqs are given at the write, in order: a batch that fails gives none away.
    const events = batch.map((p, index) => new CatalogEvent(this.#ring.head + 1 + index, p.event));
    const parts = events.flatMap((event) => [OPEN, event.head, event.body, NEWLINE]);
    try {
      if (this.#damage) await this.#cutBack();
      await this.#file.write(parts);
    } catch (error) {
      await this.#cutBack().catch(() => undefined);
      const failure = new ProtocolError('unavailable', `the event log could not make the change durable (${(error as Error).message}); nothing changed`, {
        cause: error,
      });
      this.#options.log.error(
        { err: error, events: batch.length, cut_back: this.#damage === undefined },
        'event log: an append failed; its writers were told nothing changed',
      );
      for (const p of batch) p.reject(failure);
      return;
    }
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
    if (this.#options.rotateMaxBytes > 0 && this.#file.bytes > this.#options.rotateMaxBytes) await this.#rotate();
  }

  /**
   * Cuts whatever a failed append left (part of a line, or whole lines whose sync failed) off the
   * file, durably, so no later start applies events whose writers were told they failed. Until
   * that succeeds the log is damaged and appends fail.
   */
  async #cutBack(): Promise<void> {
    try {
      await this.#file.cutBack();
      this.#damage = undefined;
    } catch (error) {
      this.#damage = new Error(`a failed append could not be cut off the event log at byte ${this.#file.bytes}: ${(error as Error).message}`, { cause: error });
      throw this.#damage;
    }
  }

  /**
   * The current file gets a second name (the rotated file) and a fresh file takes its place in one
   * rename, so the log file never goes missing; the new names are made durable before any event
   * goes into the fresh file. The slow part, checkpoint and gzip, runs in the background.
   */
  async #rotate(): Promise<void> {
    const dir = this.#options.dir;
    this.#lastRotationMs = Math.max(Date.now(), this.#lastRotationMs + 1);
    const rotated = join(dir, `node-service-events-${this.#lastRotationMs}.ndjson`);
    const temp = `${this.path}.new`;
    const head = headLine(this.#ring.head);
    let fresh: FileHandle | undefined;
    let linked = false;
    try {
      fresh = await open(temp, 'w', 0o600);
      await writeAll(fresh, head);
      await link(this.path, rotated);
      linked = true;
      await rename(temp, this.path);
    } catch (error) {
      // The current file is still the log (and a crash here leaves at worst events under two names, read once).
      await fresh?.close();
      await rm(temp, { force: true });
      if (linked) await rm(rotated, { force: true });
      this.#options.log.error({ err: error }, 'event log: rotation failed; appending to the current file');
      return;
    }
    await this.#file.replace(fresh, head.length);
    // Swapped: from here the fresh file is the log, whatever happens. No event is acknowledged in it before the names are durable.
    await syncDir(dir).catch((error: unknown) => this.#options.log.error({ err: error }, 'event log: could not sync the directory after a rotation'));
    this.#queueArchive(rotated, this.#ring.head);
  }

  #queueArchive(rotated: string, lastSeq: number): void {
    this.#archiving = this.#archiving
      .then(() => this.#archive(rotated, lastSeq))
      .catch((error: unknown) => {
        this.#options.log.error({ err: error, rotated }, 'event log: archiving failed; the rotated file stays and is archived at the next start');
      });
  }

  /** Checkpoint first: only then are the rotated file's events not needed to rebuild the catalog. */
  async #archive(rotated: string, lastSeq: number): Promise<void> {
    if (this.#checkpoint && this.#checkpointed < lastSeq) this.#checkpointed = Math.max(this.#checkpointed, await this.#checkpoint());
    const dir = this.#options.dir;
    const archive = `${rotated}.gz`;
    // Streamed through zlib's thread pool: no copy of the whole file in memory, no work on the event loop.
    const temp = `${archive}.tmp`;
    await pipeline(createReadStream(rotated), createGzip({ level: ARCHIVE_GZIP_LEVEL }), createWriteStream(temp, { mode: 0o600 }));
    const written = await open(temp, 'r+');
    await written.sync().finally(() => written.close());
    await rename(temp, archive);
    await syncDir(dir);
    const archives = (await readdir(dir)).filter((n) => ARCHIVE.test(n)).sort(byFileTime);
    for (const old of archives.slice(0, Math.max(0, archives.length - this.#options.archiveKeep))) await rm(join(dir, old), { force: true });
    // Last: a rotated file gone means its archiving is over, pruning included.
    await rm(rotated, { force: true });
    this.#options.log.info({ archive, kept: Math.min(archives.length, this.#options.archiveKeep) }, 'event log rotated');
  }

  async close(): Promise<void> {
    await this.#file.flush();
    await this.#archiving;
    await this.#file.close();
  }
}

/** An event waiting for its batch, and its writer. */
interface Pending {
  event: EventSource;
  apply: ((event: CatalogEvent) => void) | undefined;
  resolve(event: CatalogEvent): void;
  reject(error: Error): void;
}

function headLine(seq: number): Buffer {
  return Buffer.from(JSON.stringify({ type: 'head', seq }) + '\n');
}

/**
 * Seqs after `after` up to `seq` may have been handed out, and seen, but are not in the log: none
 * is used again, and the retained history starts after `seq` (a resume from before it must list
 * again).
 */
function lostLine(after: number, seq: number): Buffer {
  return Buffer.from(JSON.stringify({ type: 'lost', after, seq }) + '\n');
}

/** The seq a torn line names, when enough of it is left: `{"seq":N,...` (events) or `..."seq":N` (head and lost lines). */
const TORN_SEQ = /"seq":(\d+)/;

/** By the time in the name; an archive before the rotated file of the same time. */
function byFileTime(a: string, b: string): number {
  const time = (name: string): number => Number((ARCHIVE.exec(name) ?? ROTATED.exec(name))?.[1]);
  return time(a) - time(b) || (ARCHIVE.test(a) ? -1 : 0) - (ARCHIVE.test(b) ? -1 : 0);
}

function isEventRecord(record: Record<string, unknown>): boolean {
  return typeof record.seq === 'number' && typeof record.kind === 'string' && typeof record.timestamp_ms === 'number' && typeof record.node_id === 'string';
}

interface History {
  ring: CatalogEvent[];
  head: number;
  problems: string[];
  /** Every event of the files not archived yet (for the catalog), duplicates included. */
  unarchived: EventRecord[];
  /** Files rotated out and not archived before the last stop. */
  rotated: string[];
}

/** Reads archives, rotated files and the current file, oldest first; a torn tail of the current file is replaced by a `lost` line. */
async function readHistory(dir: string, capacity: number): Promise<History> {
  const problems: string[] = [];
  let records: EventRecord[] = [];
  const unarchived: EventRecord[] = [];
  // Each node's services before each of its events, as far as the files tell (SPEC §8 visibility, sight.ts).
  const servicesOf = new Map<string, EventRecord['services']>();
  const before = new WeakMap<EventRecord, EventRecord['services']>();
  let head = 0;
  const take = (text: string, source: string, isRaw: boolean, isCurrent: boolean): void => {
    const lines = text.split('\n');
    const tail = lines.pop() ?? '';
    lines.forEach((line, index) => {
      if (line === '') return;
      try {
        const record = JSON.parse(line) as Record<string, unknown>;
        if (record.type === 'head' && typeof record.seq === 'number') head = Math.max(head, record.seq);
        else if (record.type === 'lost' && typeof record.seq === 'number') {
          head = Math.max(head, record.seq);
          // Nothing before the loss can be resumed from (see lostLine).
          records = [];
          servicesOf.clear();
        } else if (isEventRecord(record)) {
          const event = record as unknown as EventRecord;
          if (isRaw) unarchived.push(event);
          // A crash between writing an archive and removing its file leaves events in both.
          if (event.seq <= head) return;
          head = event.seq;
          const previous = servicesOf.get(event.node_id);
          if (previous) before.set(event, previous);
          servicesOf.set(event.node_id, event.kind === 'delete' ? [] : event.services);
          records.push(event);
          if (records.length > capacity) records.shift();
        } else problems.push(`${source}:${index + 1}: not an event; skipped`);
      } catch {
        problems.push(`${source}:${index + 1}: not JSON; skipped`);
      }
    });
    if (tail !== '') problems.push(`${source}: the last line (${tail.length} bytes) was torn by a crash; skipped${isCurrent ? '' : ' (in an older file)'}`);
  };
  const names = await readdir(dir).catch(() => [] as string[]);
  const rotated: string[] = [];
  for (const name of names.filter((n) => ARCHIVE.test(n) || ROTATED.test(n)).sort(byFileTime)) {
    const isRaw = ROTATED.test(name);
    if (isRaw) rotated.push(join(dir, name));
    try {
      const data = await readFile(join(dir, name));
      take((isRaw ? data : await gunzip(data)).toString('utf8'), name, isRaw, false);
    } catch (error) {
      problems.push(`${name}: unreadable (${(error as Error).message}); skipped`);
    }
  }
  const current = join(dir, EVENT_LOG_FILE);
  const text = await readFile(current, 'utf8').catch(() => '');
  take(text, EVENT_LOG_FILE, true, true);
  if (text !== '' && !text.endsWith('\n')) {
    const good = Buffer.byteLength(text.slice(0, text.lastIndexOf('\n') + 1));
    const torn = text.slice(text.lastIndexOf('\n') + 1);
    // The torn event may have been seen (storage can lose what it had synced): its seq is spent, and one more,
    // so the head a fresh watcher learns now is no seq a watcher could have learned before.
    const named = Number(TORN_SEQ.exec(torn)?.[1]);
    const tornSeq = Number.isSafeInteger(named) && named > head ? named : head + 1;
    const lost = lostLine(head, tornSeq + 1);
    problems.push(`${EVENT_LOG_FILE}: seqs ${head + 1}..${tornSeq + 1} are never used again; watchers resuming from before get resync_required`);
    await replaceTail(current, good, lost);
    head = tornSeq + 1;
    records = [];
  }
  const interned = new Map<string, Buffer>();
  return { ring: records.map((record) => CatalogEvent.fromRecord(record, interned, before.get(record))), head, problems, unarchived, rotated };
}

/**
 * Puts `line` where the torn tail starts and cuts the file after it, never truncating more than the
 * tail: a crash at any point leaves every whole line and at worst a torn tail again.
 */
async function replaceTail(path: string, good: number, line: Buffer): Promise<void> {
  const file = await open(path, 'r+');
  try {
    await file.write(line, 0, line.length, good);
    await file.truncate(good + line.length);
    await file.datasync();
  } finally {
    await file.close();
  }
}
