import type { Stats } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { jsonSyntaxError } from '../errors/json-document.js';
import type { JoinTokenEntry, TokenEntry, UserTokenEntry } from './token-store.js';

/** `<data-dir>/auth_tokens.json` (mode 0600). */
export interface TokenFile {
  version: 1;
  admin: TokenEntry[];
  users: UserTokenEntry[];
  join: JoinTokenEntry[];
}

export const TOKENS_FILE = 'auth_tokens.json';

/**
 * Which file is there: every write renames a new file into place, so a file another process wrote has
 * another inode than the one this process last saw, even within one mtime tick; '' when there is none.
 */
export function fileVersion(stats: Stats | undefined): string {
  return stats === undefined ? '' : `${stats.ino}:${stats.mtimeMs}:${stats.size}`;
}

/** A copy to change: what readers hold stays as it was until the write is done. */
export function copyOf(data: TokenFile): TokenFile {
  return { version: 1, admin: data.admin.map((e) => ({ ...e })), users: data.users.map((e) => ({ ...e })), join: data.join.map((e) => ({ ...e })) };
}

export function emptyFile(): TokenFile {
  return { version: 1, admin: [], users: [], join: [] };
}

/** The file's tokens; an error that never quotes the file (it holds secrets). */
export async function readTokens(path: string): Promise<TokenFile> {
  const text = await readFile(path, 'utf8');
  let parsed: Partial<TokenFile>;
  try {
    parsed = JSON.parse(text) as Partial<TokenFile>;
  } catch {
    // JSON.parse would quote the start of the file: tokens.
    throw new Error(`${path}: invalid JSON ${jsonSyntaxError(text)}`);
  }
  if (!Array.isArray(parsed.admin) || !Array.isArray(parsed.users)) throw new Error(`${path}: not an Acheron token file (admin and users lists expected)`);
  return { version: 1, admin: parsed.admin, users: parsed.users, join: Array.isArray(parsed.join) ? parsed.join : [] };
}
