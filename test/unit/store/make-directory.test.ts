// makeDirectory: `mkdir -p` that ends, also where Node 20's recursive mkdir spins (under /proc).
import { access, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { makeDirectory, namingOption, removeMadeDirectories } from '../../../src/store/make-directory.js';

const root = await mkdtemp(join(tmpdir(), 'acheron-mkdir-'));
t.teardown(() => rm(root, { recursive: true, force: true }));

t.test('makes every missing component, with the mode given, and accepts what exists', async (tt) => {
  const deep = join(root, 'a', 'b', 'c');
  await makeDirectory(deep, 0o700);
  tt.ok((await stat(deep)).isDirectory(), 'made');
  tt.equal((await stat(join(root, 'a'))).mode & 0o777, 0o700 & ~process.umask(), 'each component gets the mode');
  await makeDirectory(deep);
  await makeDirectory(root);
  tt.pass('existing directories are fine');
  await Promise.all([1, 2, 3, 4].map(() => makeDirectory(join(root, 'race', 'x'))));
  tt.ok((await stat(join(root, 'race', 'x'))).isDirectory(), 'concurrent callers all succeed');
});

t.test('refuses what cannot be a directory, naming the path', async (tt) => {
  await writeFile(join(root, 'file'), '');
  await tt.rejects(makeDirectory(join(root, 'file')), { code: 'ENOTDIR', message: /not a directory, mkdir '.*\/file'$/ }, 'a file');
  await tt.rejects(makeDirectory(join(root, 'file', 'sub')), { code: 'ENOTDIR', message: /\/file\/sub'$/ }, 'a path through a file');
  // Node 20's mkdir({ recursive: true }) never returns here.
  await tt.rejects(makeDirectory('/proc/acheron-nope/x'), { code: 'ENOENT', message: /mkdir '\/proc\/acheron-nope'/ });
});

t.test('namingOption: the failure named by the option that gave the path, its errno code kept', async (tt) => {
  const error = await makeDirectory(join(root, 'file', 'sub')).catch((e: unknown) => namingOption('--mount', join(root, 'file', 'sub'), e));
  tt.match(error, { code: 'ENOTDIR', message: new RegExp(`^--mount ${join(root, 'file', 'sub')}: ENOTDIR: not a directory, `) });
});

t.test('removeMadeDirectories undoes a makeDirectory: what it made, innermost first, while empty', async (tt) => {
  await makeDirectory(join(root, 'kept'));
  const made = await makeDirectory(join(root, 'kept', 'new', 'data'));
  tt.same(made, [join(root, 'kept', 'new'), join(root, 'kept', 'new', 'data')], 'the directories it made, outermost first');
  await removeMadeDirectories(made);
  await tt.rejects(access(join(root, 'kept', 'new')), { code: 'ENOENT' }, 'gone');
  tt.ok((await stat(join(root, 'kept'))).isDirectory(), 'one that was there before stays');
  const again = await makeDirectory(join(root, 'kept', 'new', 'data'));
  await writeFile(join(root, 'kept', 'new', 'data', 'catalog.journal'), '');
  await removeMadeDirectories(again);
  tt.ok((await stat(join(root, 'kept', 'new', 'data', 'catalog.journal'))).isFile(), 'one holding what the start wrote stays, with its parents');
});
