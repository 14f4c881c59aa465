import { FsError } from './errors.js';

/** Every JSON document of a synthetic tree: pretty, with a final newline (so `cat` output ends cleanly). */
export const json = (value: unknown): string => JSON.stringify(value, null, 2) + '\n';

/** JSON.parse for a document a writer sent: a syntax error is EINVAL naming the file, on one line. */
export function parseJsonDocument(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new FsError('EINVAL', `${what}: invalid JSON: ${(error as Error).message.replace(/\s+/g, ' ')}`);
  }
}
