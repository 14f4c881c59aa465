import { open, rm, stat } from 'node:fs/promises';

const LOCK_STALE_MS = 30_000;
const LOCK_WAIT_MS = 10_000;

/**
 * Takes the lock file at `path` (created exclusively, holding our pid), waiting up to 10 s for
 * another process to release it; one older than 30 s is taken for stale and removed. Resolves
 * with its release.
 */
export async function lockFile(path: string): Promise<() => Promise<void>> {
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      const file = await open(path, 'wx', 0o600);
      await file.writeFile(String(process.pid)).finally(() => file.close());
      return () => rm(path, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const age = Date.now() - ((await stat(path).catch(() => undefined))?.mtimeMs ?? Date.now());
      if (age > LOCK_STALE_MS) await rm(path, { force: true });
      else if (Date.now() > deadline) throw new Error(`${path}: locked by another process for over ${LOCK_WAIT_MS} ms`);
      else await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}
