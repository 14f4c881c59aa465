import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Teardown } from './node.js';
import { q, sh } from './process.js';

/**
 * A directory that is a tmpfs of `size` (`64k`, `1m`): a disk the test can fill. It is `tmpfs` in a
 * temp dir of its own, so what goes beside it (a server's `<data dir>.log`) stays on the real disk.
 * `mode`: the mount's permissions (`0700`, as a data dir wants). At teardown it is unmounted (lazily
 * if a file is still open in it: the tmpfs would outlive the test) before its temp dir is removed.
 */
export async function tmpfsDir(t: Teardown, size: string, mode?: string): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'acheron-tmpfs-'));
  const dir = join(root, 'tmpfs');
  await mkdir(dir);
  const mounted = await sh(`mount -t tmpfs -o ${q(`size=${size}${mode === undefined ? '' : `,mode=${mode}`}`)} tmpfs ${q(dir)}`);
  // One teardown, in this order: a removal while mounted would fail on the mount point and leave the tmpfs.
  t.teardown(async () => {
    if (mounted.code === 0) await sh(`umount ${q(dir)} || umount -l ${q(dir)}`);
    await rm(root, { recursive: true, force: true });
  });
  if (mounted.code !== 0) throw new Error(`mount -t tmpfs ${dir}: ${mounted.stderr.trim()}`);
  return dir;
}
