// st_blocks through a mount (node mount and WorldFS alike): a file with bytes never shows 0 blocks,
// for tar -S and cp --sparse take such a file for all holes and copy zeros; du counts what it holds.
// st_nlink too: a file's link count is the node's.
import { randomBytes } from 'node:crypto';
import { truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Test } from 'tap';
import { tempDir } from './node.js';
import { q, sh } from './process.js';

async function sizeAndBlocks(t: Test, path: string): Promise<{ size: number; blocks: number }> {
  const r = await sh(`stat -c '%s %b' ${q(path)}`);
  t.equal(r.code, 0, `stat ${path} (${r.stderr.trim()})`);
  const [size, blocks] = r.stdout.trim().split(' ').map(Number) as [number, number];
  return { size, blocks };
}

/** `mounted`: an export's directory seen through a mount; `onDisk`: that directory on the node; `synthetic`: a file of the tree itself. */
export async function checkBlocks(t: Test, mounted: string, onDisk: string, synthetic: string): Promise<void> {
  const data = randomBytes(1 << 20);
  await writeFile(join(onDisk, 'blocks.bin'), data);
  const file = await sizeAndBlocks(t, join(mounted, 'blocks.bin'));
  t.ok(file.blocks * 512 >= file.size, `an export file's blocks hold its size (${file.blocks} blocks for ${file.size} bytes; it was 0)`);
  const du = await sh(`du -k ${q(join(mounted, 'blocks.bin'))}`);
  t.ok(Number(du.stdout.split(/\s/)[0]) >= 1024, `du counts it (${du.stdout.trim()})`);
  const copy = await tempDir(t);
  const tar = await sh(
    `tar -C ${q(mounted)} -cSf - blocks.bin | tar -C ${q(copy)} -xf - && sha256sum ${q(join(copy, 'blocks.bin'))} ${q(join(onDisk, 'blocks.bin'))}`,
  );
  t.equal(tar.code, 0, `tar -S (${tar.stderr.trim()})`);
  const [copied, original] = tar.stdout
    .trim()
    .split('\n')
    .map((line) => line.split(' ')[0]);
  t.equal(copied, original, 'tar -S copies the bytes, not holes');
  await writeFile(join(onDisk, 'sparse.bin'), '');
  await truncate(join(onDisk, 'sparse.bin'), 8 << 20);
  const sparse = await sizeAndBlocks(t, join(mounted, 'sparse.bin'));
  t.ok(sparse.blocks < 64, `a sparse file shows the blocks it really has (${sparse.blocks} for ${sparse.size} bytes), so du and tar -S skip its holes`);
  // And its link count, st_nlink beside st_blocks (WorldFS showed 1 for every file; find -links, tar).
  await sh(`ln ${q(join(onDisk, 'blocks.bin'))} ${q(join(onDisk, 'blocks.link'))}`);
  const links = await sh(`stat -c %h ${q(join(mounted, 'blocks.bin'))}`);
  t.equal(links.stdout.trim(), '2', 'a file with two names on the node shows st_nlink 2');
  await sh(`rm -f ${q(join(onDisk, 'blocks.link'))}`);
  const doc = await sizeAndBlocks(t, synthetic);
  t.equal(doc.blocks, Math.ceil(doc.size / 512), `a synthetic file shows the blocks its size needs (${doc.blocks} for ${doc.size} bytes)`);
}
