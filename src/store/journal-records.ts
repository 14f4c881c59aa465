import { readFile } from 'node:fs/promises';

// The journal's file format (SPEC §5): one JSON record per line, `{"key":…,"value":…}` or
// `{"key":…,"deleted":true}`; the last value of a key wins.

/** JSON as text, or as UTF-8 bytes in parts (written one after another, never joined). */
export type JsonText = string | readonly Buffer[];

/**
 * A value's JSON as `setJson` takes it, or a function that renders it. A function is kept in place
 * of the JSON (for compaction) and called again then, so it must render the same value each time:
 * it renders data its caller keeps anyway, and the journal holds no copy.
 */
export type JsonValue = JsonText | (() => JsonText);

/** What a journal brought back at start-up, and what it had to skip or set aside. */
export interface RestoredState {
  values: Map<string, unknown>;
  problems: string[];
}

/**
 * The values a journal file holds (none if there is no file). A torn last line is left out, `tornAt`
 * where it begins (the file's good length); any other bad line is skipped and sets `setAside`.
 */
export async function readJournal(path: string): Promise<RestoredState & { setAside: boolean; tornAt?: number }> {
  const values = new Map<string, unknown>();
  const problems: string[] = [];
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { values, problems, setAside: false };
    throw error;
  }
  const goodBytes = bytes.lastIndexOf(0x0a) + 1;
  const lines = bytes.toString('utf8').split('\n');
  const tail = lines.pop() ?? '';
  let setAside = false;
  lines.forEach((line, index) => {
    if (line === '') return;
    const record = parseRecord(line);
    if (!record) {
      problems.push(`line ${index + 1} is not a journal record; skipped`);
      setAside = true;
    } else if ('deleted' in record) values.delete(record.key);
    else values.set(record.key, record.value);
  });
  if (tail === '') return { values, problems, setAside };
  problems.push(`the last line (${bytes.length - goodBytes} bytes) was torn by a crash or a failed write; cut off`);
  return { values, problems, setAside, tornAt: goodBytes };
}

function parseRecord(line: string): { key: string; value: unknown } | { key: string; deleted: true } | undefined {
  try {
    const record = JSON.parse(line) as { key?: unknown; value?: unknown; deleted?: unknown };
    if (typeof record.key !== 'string') return undefined;
    if (record.deleted === true) return { key: record.key, deleted: true };
    return 'value' in record ? { key: record.key, value: record.value } : undefined;
  } catch {
    return undefined;
  }
}

/** Lines as bytes, made as they are written (a snapshot can be tens of MiB). */
export function* encoded(lines: Iterable<string | readonly Buffer[]>): Iterable<Buffer> {
  for (const line of lines) yield* typeof line === 'string' ? [Buffer.from(line)] : line;
}

export function deletedLine(key: string): string {
  return JSON.stringify({ key, deleted: true }) + '\n';
}

const RECORD_END = Buffer.from('}\n');

export function recordLine(key: string, value: JsonValue): string | readonly Buffer[] {
  const json = typeof value === 'function' ? value() : value;
  const head = `{"key":${JSON.stringify(key)},"value":`;
  return typeof json === 'string' ? `${head}${json}}\n` : [Buffer.from(head), ...json, RECORD_END];
}
