import { execFile } from 'node:child_process';
import { readFile, realpath, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface MountEntry {
  mountPoint: string;
  fstype: string;
  source: string;
}

/** Mount points are escaped in mountinfo (`\040` for a space). */
const unescape = (field: string): string => field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));

export async function readMountTable(): Promise<MountEntry[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const fields = line.split(' ');
      const separator = fields.indexOf('-');
      return { mountPoint: unescape(fields[4] ?? ''), fstype: fields[separator + 1] ?? '', source: unescape(fields[separator + 2] ?? '') };
    });
}

/**
 * The path the mount table will show for a mount on `given`: absolute, symlinks resolved (the kernel
 * lists the real path, so a mount through `/home` → `/srv/home` was never found there and its daemon
 * took it for unmounted). A mount point that cannot be resolved itself (missing yet, or a dead FUSE
 * mount: ENOTCONN) is its resolved parent's entry of that name.
 */
export async function mountPointPath(given: string): Promise<string> {
  const absolute = resolve(given);
  try {
    return await realpath(absolute);
  } catch {
    try {
      return join(await realpath(dirname(absolute)), basename(absolute));
    } catch {
      return absolute;
    }
  }
}

export async function findMount(mountPoint: string): Promise<MountEntry | undefined> {
  return (await readMountTable()).reverse().find((entry) => entry.mountPoint === mountPoint);
}

/**
 * Makes `mountPoint` ready for a new mount: a stale FUSE mount (its daemon died: ENOTCONN) is
 * lazily unmounted; a live one, or any other file system mounted there, is an error, because
 * fuse-native's `force` would silently mount over it.
 */
export async function clearStaleMount(mountPoint: string): Promise<'clean' | 'cleared'> {
  const table = (await readMountTable()).reverse();
  await refuseNesting(mountPoint, table);
  const entry = table.find((e) => e.mountPoint === mountPoint);
  if (!entry) return 'clean';
  if (!entry.fstype.startsWith('fuse')) throw new Error(`${mountPoint} is already a mount point (${entry.fstype}); refusing to mount over it`);
  if ((await mountState(mountPoint)) === 'live')
    throw new Error(`${mountPoint} is served by a live ${entry.fstype} mount (${entry.source}); unmount it first or pick another directory`);
  await lazyUnmount(mountPoint);
  return 'cleared';
}

/** A mount inside an acheron tree (a node's, a WorldFS), or over one, would hide that tree's files from its users. */
async function refuseNesting(mountPoint: string, table: readonly MountEntry[]): Promise<void> {
  const under = (path: string, dir: string): boolean => path.startsWith(dir === '/' ? '/' : `${dir}/`);
  const trees = table.filter((e) => e.fstype === 'fuse.acheron');
  const host = trees.find((e) => under(mountPoint, e.mountPoint));
  if (host) {
    if ((await mountState(host.mountPoint)) === 'stale')
      throw new Error(`${mountPoint} lies inside ${host.mountPoint}, an acheron mount whose daemon is gone: \`fusermount -uz ${host.mountPoint}\` first`);
    throw new Error(`${mountPoint} lies inside the acheron mount ${host.mountPoint}, whose files a mount there would hide; pick a directory outside it`);
  }
  for (const inner of trees.filter((e) => under(e.mountPoint, mountPoint)))
    if ((await mountState(inner.mountPoint)) === 'live')
      throw new Error(`${mountPoint} holds the live acheron mount ${inner.mountPoint}, which a mount there would hide; pick another directory`);
}

/**
 * Whether the FUSE mount on `mountPoint` is served: its root answers ENOTCONN (or ECONNABORTED) only
 * once its daemon is gone, a live daemon's never does. One that does not answer within 2 s is live (busy).
 */
export function mountState(mountPoint: string): Promise<'live' | 'stale'> {
  return Promise.race([
    stat(mountPoint).then(
      () => 'live' as const,
      (error: NodeJS.ErrnoException) => (error.code === 'ENOTCONN' || error.code === 'ECONNABORTED' ? ('stale' as const) : ('live' as const)),
    ),
    new Promise<'live'>((resolve) => setTimeout(() => resolve('live'), 2000).unref()),
  ]);
}

/** `fusermount -uz`: detaches now, even while something still holds the mount. */
export async function lazyUnmount(mountPoint: string): Promise<void> {
  try {
    await run('fusermount', ['-uz', mountPoint]);
  } catch {
    await run('umount', ['-l', mountPoint]);
  }
}

/**
 * fuse-native keeps serving after an external `umount` (SPEC §12): poll the mount table and call
 * `onGone` once the mount is no longer there. Returns the stop function.
 */
export function watchForUnmount(mountPoint: string, onGone: () => void, intervalMs = 1000): () => void {
  const timer = setInterval(() => {
    void findMount(mountPoint).then(
      (entry) => {
        if (!entry) onGone();
      },
      () => undefined,
    );
  }, intervalMs);
  return () => clearInterval(timer);
}
