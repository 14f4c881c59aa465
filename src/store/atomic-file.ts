import { open, rename } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Replaces `path` whole: temp file, fsync, rename, fsync of the directory (crash-safe). */
export async function writeFileAtomic(path: string, data: string | Buffer, mode = 0o600): Promise<void> {
  const temp = `${path}.tmp-${process.pid}-${Date.now()}`;
  const file = await open(temp, 'w', mode);
  try {
    await file.writeFile(data);
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(temp, path);
  const dir = await open(dirname(path), 'r');
  await dir.sync().finally(() => dir.close());
}
