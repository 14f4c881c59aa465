// Symlinks in an export through a mount (node mount and WorldFS alike): shown as links with their own
// targets (an absolute one, or one that climbs out and back in, relative to the link), so `rm -r` of a
// link to a directory removes the link, never what it leads to (it used to see a directory there and
// empty it), find and tar end, and links that dangle (tar x, cp -a of a link before its target) are
// made and shown. Only a link that leads out of the export is absent.
import { lstat, mkdir, readlink, symlink, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Test } from 'tap';
import { q, sh } from './process.js';

/** `mounted`: a writable export's directory seen through a mount; `onDisk`: that directory on the node. */
export async function checkLinks(t: Test, mounted: string, onDisk: string): Promise<void> {
  const present = (path: string) =>
    lstat(path).then(
      () => true,
      () => false,
    );
  const disk = join(onDisk, 'links');
  const seen = join(mounted, 'links');
  await mkdir(join(disk, 'dir'), { recursive: true });
  await writeFile(join(disk, 'dir', 'f'), 'inside\n');
  await writeFile(join(disk, 'keep.txt'), 'kept\n');
  await symlink('dir', join(disk, 'to-dir'));
  await symlink(join(disk, 'keep.txt'), join(disk, 'absolute'));
  await symlink('.', join(disk, 'self'));
  await symlink('..', join(disk, 'dir', 'up'));
  await symlink('to-dir/f', join(disk, 'chain'));
  await symlink(`../../${basename(onDisk)}/links/keep.txt`, join(disk, 'roundabout'));
  await symlink('/etc/passwd', join(disk, 'out'));

  const kinds = await sh(`cd ${q(seen)} && stat -c '%n %F' to-dir absolute self dir/up chain dir && readlink to-dir absolute self dir/up chain roundabout`);
  t.equal(kinds.code, 0, `stat and readlink (${kinds.stderr.trim()})`);
  t.same(
    kinds.stdout.trim().split('\n'),
    [
      ...['to-dir symbolic link', 'absolute symbolic link', 'self symbolic link', 'dir/up symbolic link', 'chain symbolic link', 'dir directory'],
      ...['dir', 'keep.txt', '.', '..', 'to-dir/f', 'keep.txt'],
    ],
    "links are links with their own targets; an absolute one, or one through the export's parent, relative to the link",
  );
  const through = await sh(`cat ${q(join(seen, 'to-dir', 'f'))} ${q(join(seen, 'absolute'))} ${q(join(seen, 'self', 'dir', 'up', 'keep.txt'))}`);
  t.equal(through.stdout, 'inside\nkept\nkept\n', `and lead where they lead on the node (${through.stderr.trim()})`);

  const found = await sh(`find ${q(seen)} | sort`, { timeoutMs: 20_000 });
  t.same(
    found.stdout
      .split('\n')
      .filter(Boolean)
      .map((path) => path.slice(seen.length)),
    ['', '/absolute', '/chain', '/dir', '/dir/f', '/dir/up', '/keep.txt', '/roundabout', '/self', '/to-dir'],
    `find ends and does not follow links; the link leading out is absent (${found.stderr.trim()})`,
  );
  const tar = await sh(`tar -C ${q(mounted)} -cf - links | tar -tvf - | grep -- '->'`, { timeoutMs: 20_000 });
  t.match(tar.stdout, /links\/to-dir -> dir/, 'tar archives a link as a link');

  const removed = await sh(`rm -r ${q(join(seen, 'to-dir'))} ${q(join(seen, 'self'))}`);
  t.equal(removed.code, 0, `rm -r of links (${removed.stderr.trim()})`);
  t.ok(
    (await present(join(disk, 'dir', 'f'))) && (await present(join(disk, 'keep.txt'))),
    'removes the links, not what they led to (rm -r emptied the directory)',
  );
  t.notOk(await present(join(disk, 'to-dir')), 'the link is gone on the node');

  const made = await sh(`ln -s dir/f ${q(join(seen, 'made'))} && cat ${q(join(seen, 'made'))}`);
  t.equal(made.stdout, 'inside\n', `ln -s of a relative link inside the export works (${made.stderr.trim()})`);
  t.equal(await readlink(join(disk, 'made')), 'dir/f', 'made on the node as given');
  const targetMtime = (await lstat(join(disk, 'dir', 'f'))).mtimeMs;
  const touched = await sh(`touch -h -d 2001-02-03T04:05:06Z ${q(join(seen, 'made'))}`);
  t.equal(touched.code, 0, `touch -h of a link (${touched.stderr.trim()})`);
  t.equal(new Date((await lstat(join(disk, 'made'))).mtimeMs).getUTCFullYear(), 2001, "sets the link's own time");
  t.equal((await lstat(join(disk, 'dir', 'f'))).mtimeMs, targetMtime, 'not the time of what it leads to');
  // chown -h of it too, to the owner shown, as tar x and cp -a as root do (it answered ENOENT: the chown followed the link).
  const dangling = await sh(
    `cd ${q(seen)} && ln -s not-yet later && readlink later && chown -h "$(stat -c %u:%g later)" later && echo made > not-yet && cat later && rm later`,
  );
  t.equal(dangling.stdout, 'not-yet\nmade\n', `a link made before its target (tar x, cp -a) is made, shown, chowned and removed (${dangling.stderr.trim()})`);
  await mkdir(join(disk, 'rr'));
  await writeFile(join(disk, 'rr', 'a'), 'a\n');
  await symlink('a', join(disk, 'rr', 'b'));
  const rmrf = await sh(`rm -rf ${q(join(seen, 'rr'))}`);
  t.equal(rmrf.code, 0, `rm -rf of a directory whose link dangles once the file it named is gone (${rmrf.stderr.trim()})`);
  t.notOk(await present(join(disk, 'rr')), 'all of it removed');
  for (const target of ['/etc/passwd', '../../..']) {
    const refused = await sh(`ln -s ${q(target)} ${q(join(seen, 'bad'))}`);
    t.match(refused.stderr, /Operation not permitted/, `ln -s ${target}: EPERM (it would lead out of the export)`);
  }
  t.notOk(await present(join(disk, 'bad')), 'nothing made for them');
}
