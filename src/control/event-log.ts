import { mkdir, open, readdir, readFile, rename, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzip as gunzipCallback, gzip as gzipCallback } from 'node:zlib';
import type { Logger } from 'pino';
import type { NodeLabels, NodePlatform, ServiceDescriptor } from '../protocol/types.gen.js';
import { writeFileAtomic } from '../store/atomic-file.js';
import type { ServiceDelta } from './delta.js';

const gzip = promisify(gzipCallback);
const gunzip = promisify(gunzipCallback);

export type EventKind = 'upsert' | 'offline' | 'online' | 'delete';

/** One catalog change (SPEC §6 Events): the upsert reply plus seq, kind and time. */
export interface CatalogEvent {
  seq: number;
  kind: EventKind;
  timestamp_ms: number;
  node_id: string;
  node_name: string;
  platform: NodePlatform;
  labels: NodeLabels;
  services: ServiceDescriptor[];
  service_delta: ServiceDelta;
}

export type NewEvent = Omit<CatalogEvent, 'seq'>;

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

export const EVENT_LOG_FILE = 'node-service-events.ndjson';
const ARCHIVE = /^node-service-events-(\d+)\.ndjson\.gz$/;

/**
 * The catalog's write-ahead log (SPEC §6): every event gets the next `seq`, is appended and
 * fdatasync'd (group commit) before anyone sees it, and stays in a bounded ring for replay. The
 * file rotates into gzip archives; each new file starts with a `head` line carrying the last seq,
 * so a seq is never reused whatever was pruned. At start-up the ring is refilled from disk; a torn
 * last line is skipped and reported.
 */
export class EventLog {
  readonly path: string;
  readonly ringCapacity: number;
  #options: EventLogSettings;
  #file: FileHandle;
  #bytes: number;
  /** The last seq handed out; the events after #head are still being written. */
  #assigned: number;
  #head: number;
  #ring: CatalogEvent[] = [];
  #pending: Array<{ event: CatalogEvent; line: string; resolve(): void; reject(error: Error): void }> = [];
  #flushing: Promise<void> | undefined;
  #listeners: Array<(event: CatalogEvent) => void> = [];

  private constructor(options: EventLogSettings, file: FileHandle, bytes: number, head: number, ring: CatalogEvent[]) {
    this.#options = options;
    this.path = join(options.dir, EVENT_LOG_FILE);
    this.ringCapacity = options.ringCapacity;
    this.#file = file;
    this.#bytes = bytes;
    this.#assigned = head;
    this.#head = head;
    this.#ring = ring;
  }

  static async open(options: EventLogOptions): Promise<EventLog> {
    const full = { ringCapacity: 1024, rotateMaxBytes: 8 << 20, archiveKeep: 8, ...options };
    await mkdir(full.dir, { recursive: true });
    const path = join(full.dir, EVENT_LOG_FILE);
    const { events, head, problems } = await readHistory(full.dir, full.ringCapacity);
    for (const problem of problems) full.log.error({ path }, `event log: ${problem}`);
    const file = await open(path, 'a', 0o600);
    let bytes = (await file.stat()).size;
    if (bytes === 0) {
      const line = JSON.stringify({ type: 'head', seq: head }) + '\n';
      await file.write(line);
      await file.datasync();
      bytes = Buffer.byteLength(line);
    }
    return new EventLog(full, file, bytes, head, events);
  }

  /**
   * The last seq that is durable and told to the listeners (0 before any event). Watches report
   * it as head_seq: a seq merely handed out may still be in flight, and a watcher resuming after
   * it would miss that event (or, after a crash, resume after a seq that never existed).
   */
  get headSeq(): number {
    return this.#head;
  }

  /** Events in the ring, oldest first. */
  retained(): readonly CatalogEvent[] {
    return this.#ring;
  }

  window(): { events: number; capacity: number; oldest_seq: number | null; newest_seq: number | null; oldest_ms: number | null; newest_ms: number | null; window_ms: number } {
    const oldest = this.#ring[0];
    const newest = this.#ring[this.#ring.length - 1];
    return {
      events: this.#ring.length, capacity: this.ringCapacity, oldest_seq: oldest?.seq ?? null, newest_seq: newest?.seq ?? null,
      oldest_ms: oldest?.timestamp_ms ?? null, newest_ms: newest?.timestamp_ms ?? null,
      window_ms: oldest && newest ? newest.timestamp_ms - oldest.timestamp_ms : 0,
    };
  }

  /** Called with each event once it is durable, in seq order. */
  onEvent(listener: (event: CatalogEvent) => void): void {
    this.#listeners.push(listener);
  }

  /** Assigns the next seq, makes the event durable, then tells the listeners. */
  async append(event: NewEvent): Promise<CatalogEvent> {
    const full: CatalogEvent = { seq: ++this.#assigned, ...event };
    const line = JSON.stringify(full) + '\n';
    await new Promise<void>((resolve, reject) => {
      this.#pending.push({ event: full, line, resolve, reject });
      void this.#flush();
    });
    return full;
  }

  async #flush(): Promise<void> {
    while (this.#flushing) await this.#flushing;
    if (this.#pending.length === 0) return;
    const batch = this.#pending;
    this.#pending = [];
    this.#flushing = (async () => {
      const text = batch.map((p) => p.line).join('');
      try {
        await this.#file.write(text);
        await this.#file.datasync();
      } catch (error) {
        for (const p of batch) p.reject(error as Error);
        return;
      }
      this.#bytes += Buffer.byteLength(text);
      for (const p of batch) {
        const { event } = p;
        this.#head = event.seq;
        this.#ring.push(event);
        if (this.#ring.length > this.ringCapacity) this.#ring.shift();
        for (const listener of this.#listeners) listener(event);
        p.resolve();
      }
      if (this.#options.rotateMaxBytes > 0 && this.#bytes > this.#options.rotateMaxBytes) await this.#rotate();
    })().finally(() => (this.#flushing = undefined));
    return this.#flushing;
  }

  /** The current file becomes a gzip archive; old archives beyond the keep count go. */
  async #rotate(): Promise<void> {
    const dir = this.#options.dir;
    const raw = await readFile(this.path);
    const archive = join(dir, `node-service-events-${Date.now()}.ndjson.gz`);
    await writeFileAtomic(archive, await gzip(raw));
    await this.#file.close();
    const temp = `${this.path}.new`;
    const fresh = await open(temp, 'w', 0o600);
    const head = JSON.stringify({ type: 'head', seq: this.#head }) + '\n';
    await fresh.write(head);
    await fresh.sync();
    await fresh.close();
    await rename(temp, this.path);
    this.#file = await open(this.path, 'a', 0o600);
    this.#bytes = Buffer.byteLength(head);
    const archives = (await readdir(dir)).filter((n) => ARCHIVE.test(n)).sort(byArchiveTime);
    for (const old of archives.slice(0, Math.max(0, archives.length - this.#options.archiveKeep))) await rm(join(dir, old), { force: true });
    this.#options.log.info({ archive, kept: Math.min(archives.length, this.#options.archiveKeep) }, 'event log rotated');
  }

  async close(): Promise<void> {
    await this.#flush();
    await this.#file.close();
  }
}

function byArchiveTime(a: string, b: string): number {
  return Number(ARCHIVE.exec(a)?.[1]) - Number(ARCHIVE.exec(b)?.[1]);
}

/** Reads archives then the current file: the last `capacity` events, the head seq, and what was skipped. */
async function readHistory(dir: string, capacity: number): Promise<{ events: CatalogEvent[]; head: number; problems: string[] }> {
  const problems: string[] = [];
  const events: CatalogEvent[] = [];
  let head = 0;
  const take = (text: string, source: string, isCurrent: boolean): void => {
    const lines = text.split('\n');
    const tail = lines.pop() ?? '';
    lines.forEach((line, index) => {
      if (line === '') return;
      try {
        const record = JSON.parse(line) as { type?: string; seq?: number };
        if (record.type === 'head' && typeof record.seq === 'number') head = Math.max(head, record.seq);
        else if (typeof record.seq === 'number') {
          // A crash between writing an archive and swapping the file leaves events in both.
          if (record.seq <= head) return;
          head = record.seq;
          events.push(record as CatalogEvent);
          if (events.length > capacity) events.shift();
        } else problems.push(`${source}:${index + 1}: not an event; skipped`);
      } catch {
        problems.push(`${source}:${index + 1}: not JSON; skipped`);
      }
    });
    if (tail !== '') problems.push(`${source}: the last line (${tail.length} bytes) was torn by a crash; skipped${isCurrent ? '' : ' (in an archive)'}`);
  };
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const name of names.filter((n) => ARCHIVE.test(n)).sort(byArchiveTime)) {
    try {
      take((await gunzip(await readFile(join(dir, name)))).toString('utf8'), name, false);
    } catch (error) {
      problems.push(`${name}: unreadable archive (${(error as Error).message}); skipped`);
    }
  }
  const current = join(dir, EVENT_LOG_FILE);
  const text = await readFile(current, 'utf8').catch(() => '');
  take(text, EVENT_LOG_FILE, true);
  if (text !== '' && !text.endsWith('\n')) {
    // Cut the torn tail so new events start on a line of their own.
    const keep = text.slice(0, text.lastIndexOf('\n') + 1);
    const file = await open(current, 'w', 0o600);
    await file.writeFile(keep);
    await file.sync();
    await file.close();
  }
  return { events, head, problems };
}
