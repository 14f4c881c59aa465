import { open, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzip as gunzipCallback } from 'node:zlib';
import type { CatalogEventPayload } from '../protocol/types.gen.js';
import { CatalogEvent } from './catalog-event.js';
import { ARCHIVE, byFileTime, EVENT_LOG_FILE, ROTATED } from './event-log-files.js';

const gunzip = promisify(gunzipCallback);

/** An event as read back from disk, for the catalog to rebuild itself (SPEC §6: snapshot + log). */
export type EventRecord = CatalogEventPayload;

/** What the event log's files hold at start-up. */
export interface History {
  ring: CatalogEvent[];
  head: number;
  problems: string[];
  /** Every event of the files not archived yet (for the catalog), duplicates included. */
  unarchived: EventRecord[];
  /** Files rotated out and not archived before the last stop. */
  rotated: string[];
}

/**
 * Seqs after `after` up to `seq` may have been handed out, and seen, but are not in the log: none
 * is used again, and the retained history starts after `seq` (a resume from before it must list
 * again).
 */
export function lostLine(after: number, seq: number): Buffer {
  return Buffer.from(JSON.stringify({ type: 'lost', after, seq }) + '\n');
}

/** The seq a torn line names, when enough of it is left: `{"seq":N,...` (events) or `..."seq":N` (head and lost lines). */
const TORN_SEQ = /"seq":(\d+)/;

function isEventRecord(record: Record<string, unknown>): boolean {
  return typeof record.seq === 'number' && typeof record.kind === 'string' && typeof record.timestamp_ms === 'number' && typeof record.node_id === 'string';
}

/** Reads archives, rotated files and the current file, oldest first; a torn tail of the current file is replaced by a `lost` line. */
export async function readHistory(dir: string, capacity: number): Promise<History> {
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
