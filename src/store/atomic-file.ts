import { open, readdir, rename, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { isRunning } from './live-process.js';

/** What the writers here take: text, bytes, or bytes in parts (made lazily, written a group at a time). */
export type WriteData = string | Buffer | Iterable<Buffer>;

/** Parts go out in writev calls of about this many bytes: big writes never need one big buffer. */
const GROUP_BYTES = 1 << 20;
/** At most this many parts per writev (IOV_MAX on Linux is 1024). */
const GROUP_PARTS = 1024;

/** What follows a file's name in the name of one of its temp files: `.tmp-<writer pid>-<epoch ms>`. */
const TEMP_SUFFIX = /^\.tmp-(\d+)-(\d+)$/;

/**
 * Replaces `path` whole: temp file, fsync, rename, fsync of the directory (crash-safe). The temp file
 * is named after its writer's pid, so that a writer killed meanwhile can be told by `removeStaleTemps`.
 */
export async function writeFileAtomic(path: string, data: WriteData, mode = 0o600): Promise<void> {
  const temp = `${path}.tmp-${process.pid}-${Date.now()}`;
  const file = await open(temp, 'w', mode);
  try {
    try {
      await writeAll(file, data);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(temp, path);
  } catch (error) {
    // A full disk must not also leave a partial copy behind for every attempt.
    await unlink(temp).catch(() => undefined);
    throw error;
  }
  await syncDir(dirname(path));
}

/**
 * Removes the temp files of `path` whose writer died before its rename (a kill -9 during a
 * compaction: nothing else would ever remove them): those named after a pid that no longer runs, or
 * after this process's pid but older than this process (a pid used again, as pid 1 in a container).
 * A live process's are kept: it may be writing one now. Called where the file is opened; what is
 * removed is logged at info, what cannot be at warn (a leftover never stops a start).
 */
export async function removeStaleTemps(path: string, log?: Logger): Promise<void> {
  const dir = dirname(path);
  const prefix = basename(path);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') log?.warn({ err: error, path }, `could not look for leftover temp files of ${path}`);
    return;
  }
  const removed: string[] = [];
  for (const name of names) {
    const writer = name.startsWith(prefix) ? TEMP_SUFFIX.exec(name.slice(prefix.length)) : null;
    if (!writer || !(await isStaleWriter(Number(writer[1]), Number(writer[2])))) continue;
    try {
      await unlink(join(dir, name));
      removed.push(name);
    } catch (error) {
      // Gone meanwhile: removed by another opener of the same file.
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') log?.warn({ err: error, path }, `could not remove the leftover temp file ${name}`);
    }
  }
  if (removed.length > 0) log?.info({ path, removed }, `removed ${removed.length} temp file(s) of ${path} left by writers that died: ${removed.join(', ')}`);
}

async function isStaleWriter(pid: number, madeMs: number): Promise<boolean> {
  if (pid === process.pid) return madeMs < performance.timeOrigin;
  return !(await isRunning(pid));
}

/** Writes all of `data` at the file's position (a write may take less than it was given). */
export async function writeAll(file: FileHandle, data: WriteData): Promise<void> {
  if (typeof data === 'string' || Buffer.isBuffer(data)) return writeGroup(file, [typeof data === 'string' ? Buffer.from(data) : data]);
  let group: Buffer[] = [];
  let bytes = 0;
  for (const part of data) {
    group.push(part);
    bytes += part.length;
    if (bytes >= GROUP_BYTES || group.length >= GROUP_PARTS) {
      await writeGroup(file, group);
      group = [];
      bytes = 0;
    }
  }
  if (group.length > 0) await writeGroup(file, group);
}

async function writeGroup(file: FileHandle, parts: Buffer[]): Promise<void> {
  const total = parts.reduce((sum, part) => sum + part.length, 0);
  const { bytesWritten } = await file.writev(parts);
  if (bytesWritten === total) return;
  // Rare (a full disk, a signal): the rest, one buffer at a time.
  const rest = Buffer.concat(parts).subarray(bytesWritten);
  for (let offset = 0; offset < rest.length;) offset += (await file.write(rest, offset)).bytesWritten;
}

/** Makes a rename or a new file in `dir` durable. */
export async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  await handle.sync().finally(() => handle.close());
}
