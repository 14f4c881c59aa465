import { fstatSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { buffer } from 'node:stream/consumers';
import { jsonSyntaxError } from '../errors/json-document.js';
import { UsageError } from './exit.js';
import { jsonBoundProblem } from '../protocol/json-bounds.js';
import { MAX_PAYLOAD_DEPTH } from '../protocol/envelope.js';

/** The text of a file an option names (`--token-file`, `--tls-cert`...); a usage error naming the option and the file when it cannot be read. */
export async function readOptionFile(flag: string, path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    throw new UsageError(`${flag} ${path}: ${(error as Error).message}`);
  }
}

/**
 * Standard input, whole (`-` for a payload or a document). A directory there (`< /some/dir`) reads
 * as nothing in Node, which the caller would call an empty document: it is named instead.
 */
export async function readStdin(what: string): Promise<Buffer> {
  if (fstatSync(0).isDirectory()) throw new UsageError(`${what}: standard input is a directory; give a file (< file.json) or a pipe`);
  return buffer(process.stdin);
}

/**
 * A JSON object read from a file an option names (`label`: `--config F`, `--file F`). The error gives
 * the position of a syntax error, never the content: such files hold secrets, and this may reach a log.
 */
export function parseJsonObject(label: string, text: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new UsageError(`${label}: invalid JSON ${jsonSyntaxError(text)}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new UsageError(`${label}: must be a JSON object`);
  // What JSON.parse takes but nothing after it can send or hash (a lone surrogate in a label froze a node's catalog).
  const bound = jsonBoundProblem(parsed, MAX_PAYLOAD_DEPTH);
  if (bound !== undefined) throw new UsageError(`${label}: ${bound.pointer}: ${bound.message}`);
  return parsed as Record<string, unknown>;
}
