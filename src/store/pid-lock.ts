import { createHash } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isLiveAcheron } from './live-process.js';
import { makeDirectory } from './make-directory.js';
import { linkIfAbsent, readLock, removeStale, withOwnFile } from './stale-lock.js';

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

/**
 * How long a taker waits for a live holder that is stopping (`stopping`): its drain of running
 * invocations (--shutdown-grace-ms, 5 s by default), the kill after it and its last writes.
 */
export const STOPPING_WAIT_MS = 15_000;

/** This process holds no lock it is still taking: a file naming it is from an earlier life of its pid. */
async function isHolder(pid: number): Promise<boolean> {
  return pid !== process.pid && (await isLiveAcheron(pid));
}

/**
 * One live acheron daemon per thing (SPEC §1: per mount point, since fuse-native would otherwise
 * mount over a live mount; per node state file, whose journal two daemons would both append to): a
 * pid file named by `pidLockPath`. A live holder is an error naming it. Taking the lock is atomic
 * however many daemons start at once: the file is written under a name of its own and linked into
 * place (whole, or not at all: EEXIST), and a stale one (its holder is gone) is removed only under a
 * claim on that very file (`removeStale`), after which every contender tries the link again: exactly
 * one wins, the others meet the winner's lock. A live holder that `stopping` says is on its way out
 * (its mount was unmounted from outside: it notices within a second, then drains) is waited for, up to
 * STOPPING_WAIT_MS, so that `umount` then the same start again works.
 */
export class PidLock {
  readonly path: string;

  private constructor(path: string) {
    this.path = path;
  }

  static async acquire(path: string, thing: LockedThing, stopping?: () => Promise<boolean>): Promise<PidLock> {
    await makeDirectory(lockDir(), 0o755);
    const waitUntil = Date.now() + STOPPING_WAIT_MS;
    return withOwnFile(path, `${process.pid}\n${thing.name}\n`, 0o644, async (ours) => {
      for (let attempt = 1; ; attempt++) {
        if (await linkIfAbsent(ours, path)) return new PidLock(path);
        const seen = await readLock(path);
        if (!seen) continue; // released meanwhile
        if (await isHolder(seen.holder)) {
          if (stopping && Date.now() < waitUntil && (await stopping())) {
            await new Promise((resolve) => setTimeout(resolve, 100));
            attempt--;
            continue;
          }
          throw new Error(`${thing.name} is ${thing.heldAs} by a live acheron daemon (pid ${seen.holder}, lock ${path}); stop it first or ${thing.otherwise}`);
        }
        // Each attempt removes one stale file or meets a live contender: many mean something else is wrong.
        if (attempt > 100)
          throw new Error(
            `${path}: could not take over the stale lock of ${thing.name} (pid ${seen.holder}); remove it if ${thing.name} is ${thing.heldAs} by no acheron daemon`,
          );
        await removeStale(path, seen, ours, isHolder);
      }
    });
  }

  async release(): Promise<void> {
    const lock = await readLock(this.path);
    if (lock?.holder === process.pid) await rm(this.path, { force: true });
  }
}
