import { createHash, randomBytes } from 'node:crypto';
import { link, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { makeDirectory } from './make-directory.js';

/** Where pid locks live: /run/acheron as root, else $XDG_RUNTIME_DIR/acheron or the temp dir. */
function lockDir(env: NodeJS.ProcessEnv = process.env): string {
  if (process.getuid?.() === 0) return '/run/acheron';
  return join(env.XDG_RUNTIME_DIR ?? tmpdir(), 'acheron');
}

/** The lock file of `key` (an absolute path) among the locks of its `kind`: `<lock dir>/<kind>-<hash>.pid`. */
export function pidLockPath(kind: string, key: string): string {
  return join(lockDir(), `${kind}-${createHash('sha256').update(key).digest('hex').slice(0, 16)}.pid`);
}

/** What a lock keeps to one daemon, in the words its messages use. */
export interface LockedThing {
  /** The thing itself: a mount point, a state file. */
  name: string;
  /** How a daemon holds it, as in `<name> is <heldAs> by a live acheron daemon`: `served`, `used`. */
  heldAs: string;
  /** The way out besides stopping the holder: `pick another directory`. */
  otherwise: string;
}

/** A lock file as read: its inode (which file it is) and the pid on its first line. */
interface LockFile {
  ino: number;
  holder: number;
}

/** Inode and content from one open: both describe the same file even while names change. */
async function readLock(path: string): Promise<LockFile | undefined> {
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

/** link(2) fails with EEXIST instead of replacing: the new name appears whole, or not at all. */
async function linkIfAbsent(existing: string, path: string): Promise<boolean> {
  try {
    await link(existing, path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
}

async function isLiveAcheron(pid: number): Promise<boolean> {
  // This process holds no lock it is still taking: a file naming it is from an earlier life of its pid.
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  // A recycled pid belongs to something else: only a live acheron holds the lock.
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  return cmdline.includes('acheron');
}

/**
 * Removes the stale file at `path` (`seen`) unless someone else is already doing so: a contender
 * first claims that very file (`<path>.claim-<inode>`, made by link(2), so exactly one succeeds),
 * then re-reads it and removes it only if it is still the file it judged stale. A claim left by a
 * contender that died meanwhile is itself stale and is removed the same way.
 */
async function removeStale(path: string, seen: LockFile, ours: string): Promise<void> {
  const claim = `${path}.claim-${seen.ino}`;
  if (!(await linkIfAbsent(ours, claim))) {
    const claimer = await readLock(claim);
    if (claimer && !(await isLiveAcheron(claimer.holder))) await removeStale(claim, claimer, ours);
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

/**
 * One live acheron daemon per thing (SPEC §1: per mount point, since fuse-native would otherwise
 * mount over a live mount; per node state file, whose journal two daemons would both append to): a
 * pid file named by `pidLockPath`. A live holder is an error naming it. Taking the lock is atomic
 * however many daemons start at once: the file is written under a name of its own and linked into
 * place (whole, or not at all: EEXIST), and a stale one (its holder is gone) is removed only under a
 * claim on that very file (`removeStale`), after which every contender tries the link again: exactly
 * one wins, the others meet the winner's lock.
 */
export class PidLock {
  readonly path: string;

  private constructor(path: string) {
    this.path = path;
  }

  static async acquire(path: string, thing: LockedThing): Promise<PidLock> {
    await makeDirectory(lockDir(), 0o755);
    const ours = `${path}.${process.pid}-${randomBytes(4).toString('hex')}.new`;
    await writeFile(ours, `${process.pid}\n${thing.name}\n`, { mode: 0o644, flag: 'wx' });
    try {
      for (let attempt = 1; ; attempt++) {
        if (await linkIfAbsent(ours, path)) return new PidLock(path);
        const seen = await readLock(path);
        if (!seen) continue; // released meanwhile
        if (await isLiveAcheron(seen.holder)) {
          throw new Error(`${thing.name} is ${thing.heldAs} by a live acheron daemon (pid ${seen.holder}, lock ${path}); stop it first or ${thing.otherwise}`);
        }
        // Each attempt removes one stale file or meets a live contender: many mean something else is wrong.
        if (attempt > 100)
          throw new Error(
            `${path}: could not take over the stale lock of ${thing.name} (pid ${seen.holder}); remove it if ${thing.name} is ${thing.heldAs} by no acheron daemon`,
          );
        await removeStale(path, seen, ours);
      }
    } finally {
      await rm(ours, { force: true });
    }
  }

  async release(): Promise<void> {
    const lock = await readLock(this.path);
    if (lock?.holder === process.pid) await rm(this.path, { force: true });
  }
}
