import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';

/** What the writers here take: text, bytes, or bytes in parts (made lazily, written a group at a time). */
export type WriteData = string | Buffer | Iterable<Buffer>;

/** Parts go out in writev calls of about this many bytes: big writes never need one big buffer. */
const GROUP_BYTES = 1 << 20;
/** At most this many parts per writev (IOV_MAX on Linux is 1024). */
const GROUP_PARTS = 1024;

/** Replaces `path` whole: temp file, fsync, rename, fsync of the directory (crash-safe). */
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
