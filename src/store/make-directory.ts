import { mkdir, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

/**
 * `mkdir -p`, one missing component at a time. Node 20's `mkdir({ recursive: true })` spins forever
 * at 100 % CPU where the kernel answers ENOENT for a directory it cannot create in an existing one
 * (under /proc or /sys, say: `--data-dir /proc/x`); here that is the error, naming the path.
 */
export async function makeDirectory(path: string, mode?: number): Promise<void> {
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
  for (const dir of missing) {
    await mkdir(dir, mode === undefined ? {} : { mode }).catch((error: NodeJS.ErrnoException) => {
      // Made meanwhile by someone else: as good.
      if (error.code !== 'EEXIST') throw error;
    });
  }
}
