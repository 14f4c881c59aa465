import { open, readFile, rm, stat } from 'node:fs/promises';
import { namedError } from '../store/named-error.js';

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
      await file
        .writeFile(String(process.pid))
        .finally(() => file.close())
        // A lock left empty (a full disk) would block every taker until it is 30 s old.
        .catch((error: unknown) => rm(path, { force: true }).then(() => Promise.reject(namedError(`${path}: the lock could not be written`, error))));
      return () => rm(path, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const age = Date.now() - ((await stat(path).catch(() => undefined))?.mtimeMs ?? Date.now());
      if (age > LOCK_STALE_MS) await rm(path, { force: true });
      else if (Date.now() > deadline)
        throw new Error(`${path}: ${await holderOf(path)} for over ${LOCK_WAIT_MS} ms; it is taken for stale once ${LOCK_STALE_MS} ms old`);
      else await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

/** Who holds the lock, as far as the file tells: an empty one was left by a process that failed or died taking it. */
async function holderOf(path: string): Promise<string> {
  const pid = Number.parseInt(await readFile(path, 'utf8').catch(() => ''), 10);
  if (!Number.isInteger(pid) || pid <= 0) return 'an empty lock file (left by a process that failed or died while taking it)';
  try {
    process.kill(pid, 0);
    return `locked by process ${pid}`;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM' ? `locked by process ${pid}` : `left by process ${pid}, which is no longer running`;
  }
}
