import { constants } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { jsonBoundProblem } from '../protocol/json-bounds.js';
import { firstDuplicateKey } from '../protocol/json-duplicate-keys.js';
import { problemAt, type Problem } from '../protocol/schemas.js';
import { jsonSyntaxError } from '../errors/json-document.js';
import { messageOf } from './message-of.js';

/** Far above any real manifest (help_md is at most 64 KiB): a bigger file is a mistake, not read whole. */
export const MAX_MANIFEST_BYTES = 1 << 20;

/**
 * A manifest file's parsed JSON, or why not. Never blocks (a FIFO is refused before it is opened, and
 * opened non-blocking in case one was swapped in), never reads a file that is not regular (a symlink
 * to a regular file is fine), refuses bytes that are not UTF-8, and never quotes the file: the problem
 * goes to logs and ERRORS.json, and the file may be anything (a symlink to /etc/shadow).
 */
export async function readManifest(file: string): Promise<{ value: unknown } | { problem: Problem }> {
  const refuse = (rule: string, description: string): { problem: Problem } => ({ problem: problemAt(file, '/', rule, description) });
  const notRegular = (kind: string): { problem: Problem } => refuse('file', `not a regular file (${kind}); a manifest must be one`);
  const tooBig = (): { problem: Problem } => refuse('size', `larger than ${MAX_MANIFEST_BYTES} bytes, the most a manifest may have`);
  try {
    const kind = fileKind(await stat(file));
    if (kind !== 'regular file') return notRegular(kind);
  } catch (error) {
    return refuse('read', `cannot read: ${messageOf(error)}`);
  }
  let bytes: Buffer;
  try {
    const handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      const stats = await handle.stat();
      const kind = fileKind(stats);
      if (kind !== 'regular file') return notRegular(kind);
      if (stats.size > MAX_MANIFEST_BYTES) return tooBig();
      bytes = await readAtMost(handle, MAX_MANIFEST_BYTES + 1, stats.size + 1);
      if (bytes.length > MAX_MANIFEST_BYTES) return tooBig();
    } finally {
      await handle.close();
    }
  } catch (error) {
    return refuse('read', `cannot read: ${messageOf(error)}`);
  }
  let text: string;
  try {
    // ignoreBOM: a BOM stays in the text, so offsets below count every byte of the file.
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    return refuse('utf8', `not valid UTF-8 at byte ${firstInvalidUtf8(bytes)}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return refuse('json', `invalid JSON ${jsonSyntaxError(text)}`);
  }
  const duplicate = firstDuplicateKey(text);
  if (duplicate !== undefined)
    return {
      problem: problemAt(file, duplicate, 'key', 'this key is written twice in one object; JSON keeps only the last, so the other is not used: keep one'),
    };
  // JSON.stringify recurses: a value nested deeper than the stack would break every later use of it;
  // a number that overflowed (1e400) cannot be hashed or published, and would block the whole catalog.
  const bound = jsonBoundProblem(value, MAX_MANIFEST_DEPTH);
  if (bound !== undefined) return { problem: problemAt(file, bound.pointer, bound.rule, bound.message) };
  return { value };
}

/** Far deeper than any real manifest (an input schema nests a few levels). */
export const MAX_MANIFEST_DEPTH = 64;

/** Reads to the end, or to `limit` bytes if it is longer (a file may grow while it is read). */
async function readAtMost(handle: FileHandle, limit: number, sizeHint: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  while (total < limit) {
    const chunk = Buffer.alloc(Math.min(limit - total, Math.max(sizeHint - total, 64 << 10)));
    const { bytesRead } = await handle.read(chunk, 0, chunk.length, total);
    if (bytesRead === 0) break;
    chunks.push(chunk.subarray(0, bytesRead));
    total += bytesRead;
  }
  return Buffer.concat(chunks);
}

function fileKind(stats: {
  isFile(): boolean;
  isDirectory(): boolean;
  isFIFO(): boolean;
  isSocket(): boolean;
  isCharacterDevice(): boolean;
  isBlockDevice(): boolean;
}): string {
  if (stats.isFile()) return 'regular file';
  if (stats.isDirectory()) return 'a directory';
  if (stats.isFIFO()) return 'a FIFO';
  if (stats.isSocket()) return 'a socket';
  if (stats.isCharacterDevice()) return 'a character device';
  if (stats.isBlockDevice()) return 'a block device';
  return 'an unknown kind of file';
}

/** The offset of the first byte that makes `bytes` invalid UTF-8 (a truncated sequence at the end counts). */
function firstInvalidUtf8(bytes: Buffer): number {
  // Decoding a prefix in streaming mode fails only on a bad byte inside it, not on one cut short at
  // its end, so the shortest failing prefix ends at the culprit.
  const fails = (length: number): boolean => {
    try {
      new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes.subarray(0, length), { stream: true });
      return false;
    } catch {
      return true;
    }
  };
  if (!fails(bytes.length)) return bytes.length - (bytes.length > 0 ? trailingPartial(bytes) : 0);
  let ok = 0;
  let bad = bytes.length;
  while (bad - ok > 1) {
    const middle = (ok + bad) >>> 1;
    if (fails(middle)) bad = middle;
    else ok = middle;
  }
  return bad - 1;
}

/** How many bytes at the end start a multi-byte sequence that never finished. */
function trailingPartial(bytes: Buffer): number {
  for (let back = 1; back <= Math.min(3, bytes.length); back++) {
    const byte = bytes[bytes.length - back] as number;
    if ((byte & 0xc0) !== 0x80) return byte >= 0xc0 ? back : 0;
  }
  return 0;
}
