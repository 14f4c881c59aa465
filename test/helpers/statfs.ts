// statfs(2) through a mount (node mount and WorldFS alike): an fs/ export answers with its real
// directory's file system, so `df` and copy tools that check the space first see it; the synthetic
// tree answers zeros, as /proc does.
import type { Test } from 'tap';
import { q, sh } from './process.js';

/** `stat -f`: fragment size, total blocks, free blocks, available blocks, total inodes. */
async function fileSystemOf(path: string): Promise<{ frsize: number; blocks: number; bfree: number; bavail: number; files: number }> {
  const r = await sh(`stat -f -c '%S %b %f %a %c' ${q(path)}`);
  if (r.code !== 0) throw new Error(`stat -f ${path}: ${r.stderr.trim()}`);
  const [frsize, blocks, bfree, bavail, files] = r.stdout.trim().split(' ').map(Number) as [number, number, number, number, number];
  return { frsize, blocks, bfree, bavail, files };
}

/** `mounted`: an export's directory seen through a mount; `onDisk`: that directory on the node; `synthetic`: a directory of the tree itself. */
export async function checkStatfs(t: Test, mounted: string, onDisk: string, synthetic: string): Promise<void> {
  const [seen, real] = [await fileSystemOf(mounted), await fileSystemOf(onDisk)];
  t.equal(seen.frsize * seen.blocks, real.frsize * real.blocks, "the export's size is its file system's (it was 0)");
  t.equal(seen.files, real.files, 'and so are its inodes');
  t.ok(seen.bavail > 0 && seen.bavail <= seen.bfree && seen.bfree <= seen.blocks, `free and available space are there (${seen.bavail} of ${seen.blocks})`);
  const sizeKiB = async (path: string) => {
    const df = await sh(`df -P -k ${q(path)} | tail -1`);
    t.equal(df.code, 0, `df ${path} (${df.stderr.trim()})`);
    return df.stdout.trim().split(/\s+/)[1];
  };
  t.equal(await sizeKiB(mounted), await sizeKiB(onDisk), "df shows the export's size");
  const none = await fileSystemOf(synthetic);
  t.same([none.blocks, none.files], [0, 0], 'the synthetic tree has no blocks and no inodes');
}
