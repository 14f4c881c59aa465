import { open, rm, stat } from 'node:fs/promises';
import { isLiveNodeProgram } from '../store/live-process.js';
import { namedError } from '../store/named-error.js';
import { readLock, removeStale, withOwnFile, type LockFile } from '../store/stale-lock.js';

const LOCK_STALE_MS = 30_000;
const LOCK_WAIT_MS = 10_000;

/**
 * Takes the lock file at `path` (created exclusively, holding our pid), waiting up to 10 s for
 * another process to release it. One naming a process that is gone, or whose pid now runs something
 * other than node or acheron (recycled), is taken over at once; any other one older than 30 s (an
 * empty one: its taker failed or died before writing its pid) is taken for stale and removed.
 * Resolves with its release.
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
      const seen = await readLock(path);
      if (seen === undefined) continue; // released meanwhile
      if (seen.holder > 0 && !(await isHolder(seen.holder))) {
        await takeOver(path, seen);
        continue;
      }
      const age = Date.now() - ((await stat(path).catch(() => undefined))?.mtimeMs ?? Date.now());
      if (age > LOCK_STALE_MS) await rm(path, { force: true });
      else if (Date.now() > deadline)
        throw new Error(`${path}: ${holderOf(seen)} for over ${LOCK_WAIT_MS} ms; it is taken for stale once ${LOCK_STALE_MS} ms old`);
      else await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

/** Our own pid holds it too: another store of this process is writing (tests open several). */
async function isHolder(pid: number): Promise<boolean> {
  return pid === process.pid || (await isLiveNodeProgram(pid));
}

/** Removes the stale lock `seen` under a claim naming this process, so that a fresh one taken meanwhile stays. */
async function takeOver(path: string, seen: LockFile): Promise<void> {
  await withOwnFile(path, String(process.pid), 0o600, (ours) => removeStale(path, seen, ours, isHolder)).catch((error: unknown) =>
    Promise.reject(namedError(`${path}: the stale lock could not be taken over`, error)),
  );
}

/** Who holds the lock, as far as the file tells: an empty one was left by a process that failed or died taking it. */
function holderOf(seen: LockFile): string {
  return seen.holder > 0 ? `locked by process ${seen.holder}` : 'an empty lock file (left by a process that failed or died while taking it)';
}
