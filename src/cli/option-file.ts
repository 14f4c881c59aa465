import { readFile } from 'node:fs/promises';
import { UsageError } from './exit.js';

/** The text of a file an option names (`--token-file`, `--tls-cert`...); a usage error naming the option and the file when it cannot be read. */
export async function readOptionFile(flag: string, path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    throw new UsageError(`${flag} ${path}: ${(error as Error).message}`);
  }
}
