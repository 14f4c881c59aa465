import { createHash } from 'node:crypto';
import { mkdir, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Where pid locks live: /run/acheron as root, else $XDG_RUNTIME_DIR/acheron or the temp dir. */
function lockDir(env: NodeJS.ProcessEnv = process.env): string {
  if (process.getuid?.() === 0) return '/run/acheron';
  return join(env.XDG_RUNTIME_DIR ?? tmpdir(), 'acheron');
}

async function isAcheronProcess(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  // A recycled pid belongs to something else: only a live acheron holds the lock.
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  return cmdline.includes('acheron');
}

/**
 * One daemon per mount point (SPEC §1): a pid file keyed by the mount path. A lock whose process is
 * gone is stale and taken over; a live one is an error naming the holder, since fuse-native would
 * otherwise mount over a live mount.
 */
export class MountLock {
  readonly path: string;

  private constructor(path: string) {
    this.path = path;
  }

  static async acquire(mountPoint: string): Promise<MountLock> {
    const dir = lockDir();
    await mkdir(dir, { recursive: true, mode: 0o755 });
    const path = join(dir, `mount-${createHash('sha256').update(mountPoint).digest('hex').slice(0, 16)}.pid`);
    try {
      const file = await open(path, 'wx', 0o644);
      await file.writeFile(`${process.pid}\n${mountPoint}\n`).finally(() => file.close());
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = Number.parseInt((await readFile(path, 'utf8').catch(() => '')).split('\n')[0] ?? '', 10);
      if (Number.isInteger(holder) && holder !== process.pid && (await isAcheronProcess(holder))) {
        throw new Error(`${mountPoint} is served by a live acheron daemon (pid ${holder}, lock ${path}); stop it first or pick another directory`);
      }
      await writeFile(path, `${process.pid}\n${mountPoint}\n`, { mode: 0o644 });
    }
    return new MountLock(path);
  }

  async release(): Promise<void> {
    const holder = Number.parseInt((await readFile(this.path, 'utf8').catch(() => '')).split('\n')[0] ?? '', 10);
    if (holder === process.pid) await rm(this.path, { force: true });
  }
}
