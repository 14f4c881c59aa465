import { FsError } from './errno.js';
import { scanJson } from './json-prefix.js';

/** Every JSON document of a synthetic tree: pretty, with a final newline (so `cat` output ends cleanly). */
export const json = (value: unknown): string => JSON.stringify(value, null, 2) + '\n';

/** JSON.parse for a document a writer sent: a syntax error is EINVAL naming the file, on one line. */
export function parseJsonDocument(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new FsError('EINVAL', `${what}: invalid JSON ${jsonSyntaxError(text)}`, { cause: error });
  }
}

/**
 * JSON.stringify of a value JSON.parse gave; undefined when it is nested too deeply for that: JSON.parse
 * takes any depth, JSON.stringify recurses and runs out of stack after some thousands of levels.
 */
export function compactJson(value: unknown): string | undefined {
  try {
    return JSON.stringify(value);
  } catch (error) {
    if (error instanceof RangeError) return undefined;
    throw error;
  }
}

/**
 * A value parsed from a writer's document, as one line of compact JSON for `purpose`; one nested too
 * deeply for that (compactJson) is the writer's problem, EINVAL naming the file, not a failure of
 * whoever was to be given the line.
 */
export function compactJsonLine(value: unknown, what: string, purpose: string): string {
  const line = compactJson(value);
  if (line === undefined) throw new FsError('EINVAL', `${what}: nested too deeply for ${purpose}`);
  return line;
}

/**
 * Where and why `text` (which JSON.parse refused) is not JSON, never quoting it: V8's message quotes
 * the start of the text, and a file that is not JSON may be anything (a symlink to /etc/shadow), while
 * the message may reach a log or ERRORS.json other principals read. `at line 2, column 5 (byte 9):
 * unexpected character`.
 */
export function jsonSyntaxError(text: string): string {
  const { state, at } = scanJson(text);
  if (state === 'empty') return 'at byte 0: the document is empty';
  if (state === 'prefix') return `${position(text, at)}: the document ends inside a JSON value`;
  // What an editor saving "UTF-8 with BOM" writes first: named, since the column it is at looks clean.
  if (state === 'invalid' && at === 0 && text.startsWith('\uFEFF'))
    return 'at byte 0: a byte order mark (U+FEFF, bytes EF BB BF), which JSON does not take: save it as UTF-8 without one';
  if (state === 'invalid') return `${position(text, at)}: unexpected character`;
  return 'at byte 0: not valid JSON';
}

/** `at line L, column C (byte B)`, 1-based line and column (in characters), 0-based byte offset in UTF-8. */
function position(text: string, index: number): string {
  const before = text.slice(0, index);
  const lineStart = before.lastIndexOf('\n') + 1;
  const line = before.split('\n').length;
  const column = [...before.slice(lineStart)].length + 1;
  return `at line ${line}, column ${column} (byte ${Buffer.byteLength(before)})`;
}
