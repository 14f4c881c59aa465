/** The event log's files in its directory: the current one, files rotated out, their gzip archives. */
export const EVENT_LOG_FILE = 'node-service-events.ndjson';
export const ARCHIVE = /^node-service-events-(\d+)\.ndjson\.gz$/;
/** A file rotated out and not yet archived: its events may still be needed to rebuild the catalog. */
export const ROTATED = /^node-service-events-(\d+)\.ndjson$/;

/** The name a file rotated out at `timeMs` gets. */
export function rotatedName(timeMs: number): string {
  return `node-service-events-${timeMs}.ndjson`;
}

/** By the time in the name; an archive before the rotated file of the same time. */
export function byFileTime(a: string, b: string): number {
  const time = (name: string): number => Number((ARCHIVE.exec(name) ?? ROTATED.exec(name))?.[1]);
  return time(a) - time(b) || (ARCHIVE.test(a) ? -1 : 0) - (ARCHIVE.test(b) ? -1 : 0);
}

/** The first line of every file: the last seq before it, so a seq is never reused whatever was pruned. */
export function headLine(seq: number): Buffer {
  return Buffer.from(JSON.stringify({ type: 'head', seq }) + '\n');
}
