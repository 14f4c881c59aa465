// chown through a mount (node mount and WorldFS alike): every file shows the daemon as its owner,
// and a chown to that owner (what `tar x` as root does to every file it makes) succeeds
// in an fs/ export; any other owner is EPERM there (the mount cannot tell who asks), and synthetic
// files keep theirs (SPEC §3).
import type { Test } from 'tap';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { q, sh } from './process.js';

/** `mounted`: an rw export's directory seen through a mount; `onDisk`: that directory on the node; `synthetic`: a file of the tree itself. */
export async function checkChown(t: Test, mounted: string, onDisk: string, synthetic: string): Promise<void> {
  await writeFile(join(onDisk, 'chown-source.txt'), 'kept\n', { mode: 0o640 });
  const copy = await sh(`cp -a ${q(join(onDisk, 'chown-source.txt'))} ${q(join(mounted, 'chown-copy.txt'))}`);
  t.equal(copy.code, 0, `cp -a into the export: ${copy.stderr.trim()}`);
  t.equal((await stat(join(onDisk, 'chown-copy.txt'))).mode & 0o777, 0o640, 'with its mode');
  // tar x keeps the archive's owners (--same-owner, root's default) with a chown of every file.
  const archive = join(onDisk, 'chown-archive.tar');
  const untar = await sh(
    `tar -C ${q(onDisk)} -cf ${q(archive)} chown-source.txt && mkdir ${q(join(mounted, 'untarred'))} && tar --same-owner -C ${q(join(mounted, 'untarred'))} -xf ${q(archive)}`,
  );
  t.equal(untar.code, 0, `tar x --same-owner of files owned as the mount shows them (it failed: Cannot change ownership): ${untar.stderr.trim()}`);
  t.equal(await readFile(join(onDisk, 'untarred', 'chown-source.txt'), 'utf8'), 'kept\n', 'the file is on the disk');
  const same = await sh(`chown "$(id -u):$(id -g)" ${q(join(mounted, 'chown-copy.txt'))}`);
  t.equal(same.code, 0, `chown to the owner shown: ${same.stderr.trim()}`);
  const before = await stat(join(onDisk, 'chown-copy.txt'));
  const other = await sh(`chown 4242:4242 ${q(join(mounted, 'chown-copy.txt'))}`);
  t.not(other.code, 0, 'chown to another owner fails');
  t.match(other.stderr, /Operation not permitted/, 'with EPERM');
  const after = await stat(join(onDisk, 'chown-copy.txt'));
  t.same([after.uid, after.gid], [before.uid, before.gid], 'and the owner on the disk stays');
  const fake = await sh(`chown "$(id -u):$(id -g)" ${q(synthetic)}`);
  t.match(fake.stderr, /Operation not permitted/, 'a synthetic file keeps its owner, even the one shown (EPERM)');
  await sh(`rm -rf ${['chown-source.txt', 'chown-copy.txt', 'chown-archive.tar', 'untarred'].map((name) => q(join(onDisk, name))).join(' ')}`);
}
