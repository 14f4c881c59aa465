import { mkdir, rmdir, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

/**
 * A path that could not be made, named by the option that gave it, as the CLI names its others
 * (`--mount /x/y: ENOTDIR: not a directory, mkdir '/x'`; docs/errors.md §2); the errno code is kept.
 */
export function namingOption(option: string, path: string, error: unknown): Error {
  const named = new Error(`${option} ${path}: ${(error as Error).message}`, { cause: error });
  return Object.assign(named, { code: (error as NodeJS.ErrnoException).code });
}

/**
 * `mkdir -p`, one missing component at a time. Node 20's `mkdir({ recursive: true })` spins forever
 * at 100 % CPU where the kernel answers ENOENT for a directory it cannot create in an existing one
 * (under /proc or /sys, say: `--data-dir /proc/x`); here that is the error, naming the path.
 * Resolves with the directories it made, outermost first (for removeMadeDirectories).
 */
export async function makeDirectory(path: string, mode?: number): Promise<string[]> {
  const missing: string[] = [];
  for (let dir = resolve(path); ; dir = dirname(dir)) {
    const found = await stat(dir).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
      return undefined;
    });
    if (found?.isDirectory()) break;
    if (found) throw Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${dir}'`), { code: 'ENOTDIR', path: dir });
    missing.unshift(dir);
    if (dirname(dir) === dir) break;
  }
  const made: string[] = [];
  for (const dir of missing) {
    const madeHere = await mkdir(dir, mode === undefined ? {} : { mode }).then(
      () => true,
      (error: NodeJS.ErrnoException) => {
        // Made meanwhile by someone else: as good (and theirs).
        if (error.code !== 'EEXIST') throw error;
        return false;
      },
    );
    if (madeHere) made.push(dir);
  }
  return made;
}

/**
 * Undoes makeDirectory for a start that failed: the directories it made, innermost first, as long
 * as they are empty (one that is not holds what the start wrote; it and its parents stay).
 */
export async function removeMadeDirectories(made: readonly string[]): Promise<void> {
  for (const dir of [...made].reverse()) {
    const removed = await rmdir(dir).then(
      () => true,
      (error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOTEMPTY' && error.code !== 'EEXIST') throw error;
        return false;
      },
    );
    if (!removed) return;
  }
}
