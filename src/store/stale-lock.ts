import { randomBytes } from 'node:crypto';
import { link, open, rm, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

/** A lock file as read: its inode (which file it is) and the pid on its first line. */
export interface LockFile {
  ino: number;
  holder: number;
}

/** Inode and content from one open: both describe the same file even while names change. */
export async function readLock(path: string): Promise<LockFile | undefined> {
  let file;
  try {
    file = await open(path, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  try {
    const { ino } = await file.stat();
    return { ino, holder: Number.parseInt((await file.readFile('utf8')).split('\n')[0] ?? '', 10) };
  } finally {
    await file.close();
  }
}

/**
 * Runs `use` with a file of this process's own beside `path` (`<path>.<pid>-<random>.new`, holding
 * `content`): what a lock is linked from, or a claim is linked from (`removeStale`). Removed after.
 */
export async function withOwnFile<T>(path: string, content: string, mode: number, use: (ours: string) => Promise<T>): Promise<T> {
  const ours = `${path}.${process.pid}-${randomBytes(4).toString('hex')}.new`;
  // Created but not written (a full disk): removed too; a name that exists (EEXIST) is someone else's.
  await writeFile(ours, content, { mode, flag: 'wx' }).catch((error: NodeJS.ErrnoException) =>
    (error.code === 'EEXIST' ? Promise.resolve() : rm(ours, { force: true })).then(() => Promise.reject(error)),
  );
  try {
    return await use(ours);
  } finally {
    await rm(ours, { force: true });
  }
}

/** link(2) fails with EEXIST instead of replacing: the new name appears whole, or not at all. */
export async function linkIfAbsent(existing: string, path: string): Promise<boolean> {
  try {
    await link(existing, path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
}

/**
 * Removes the stale file at `path` (`seen`) unless someone else is already doing so: a contender
 * first claims that very file (`<path>.claim-<inode>`, linked from `ours`, a file naming this
 * process, so exactly one succeeds), then re-reads it and removes it only if it is still the file it
 * judged stale. A claim whose holder `isHolder` denies (a contender that died meanwhile) is itself
 * stale and is removed the same way.
 */
export async function removeStale(path: string, seen: LockFile, ours: string, isHolder: (pid: number) => Promise<boolean>): Promise<void> {
  const claim = `${path}.claim-${seen.ino}`;
  if (!(await linkIfAbsent(ours, claim))) {
    const claimer = await readLock(claim);
    if (claimer && !(await isHolder(claimer.holder))) await removeStale(claim, claimer, ours, isHolder);
    else await sleep(10); // another contender is taking it over: the caller then meets its lock
    return;
  }
  try {
    const now = await readLock(path);
    if (now?.ino === seen.ino && now.holder === seen.holder) await rm(path, { force: true });
  } finally {
    await rm(claim, { force: true });
  }
}
