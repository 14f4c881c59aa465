// The SPEC §3 errno table, answered once by the dispatcher for nodes that do not implement an op.
import t from 'tap';
import { rejectsErrno } from '../../helpers/errno.js';
import { Dispatcher } from '../../../src/vfs/dispatch.js';
import { tableDirectory } from '../../../src/vfs/directory.js';
import { ctlFile, snapshotFile, staticFile } from '../../../src/vfs/files.js';
import { S_IFREG, type Attr, type VNode } from '../../../src/vfs/node.js';
import { FsError } from '../../../src/errors/errno.js';

let resets = 0;
const root = tableDirectory([
  ['README.md', staticFile('hello\n')],
  ['status.json', snapshotFile(() => ({ data: '{"n":1}\n', mtimeMs: 5 }))],
  ['control', tableDirectory([['reset', ctlFile(async () => void resets++)]])],
]);
const d = new Dispatcher(root);

t.test('walk', async (t) => {
  t.equal((await d.getattr('/README.md')).size, 6);
  t.same(await d.readdir('/'), ['README.md', 'status.json', 'control']);
  await rejectsErrno(t, d.getattr('/nope'), 'ENOENT');
  await rejectsErrno(t, d.getattr('/README.md/x'), 'ENOTDIR');
  await rejectsErrno(t, d.readdir('/README.md'), 'ENOTDIR');
});

t.test('snapshot files: size matches content, mtime from the source', async (t) => {
  const attr = await d.getattr('/status.json');
  t.equal(attr.size, 8);
  t.equal(attr.mtimeMs, 5);
  const h = await d.open('/status.json', 0);
  t.equal((await h.read!(0, 100)).toString(), '{"n":1}\n');
});

t.test('open modes are checked against the mode bits', async (t) => {
  await rejectsErrno(t, d.open('/README.md', 1), 'EACCES');
  await rejectsErrno(t, d.open('/README.md', 2), 'EACCES');
  await rejectsErrno(t, d.open('/control/reset', 0), 'EACCES');
  await rejectsErrno(t, d.open('/control', 1), 'EISDIR');
  const h = await d.open('/control/reset', 1);
  await h.write!(0, Buffer.from('\n'));
  t.equal(resets, 1, 'a ctl write runs its action');
});

t.test('defaults: mknod EACCES; mkdir, unlink, rmdir, rename, chmod, chown, symlink, link EPERM; utimens ok', async (t) => {
  await rejectsErrno(t, d.mknod('/new', S_IFREG | 0o644), 'EACCES');
  await rejectsErrno(t, d.mkdir('/dir', 0o755), 'EPERM');
  await rejectsErrno(t, d.unlink('/README.md'), 'EPERM');
  await rejectsErrno(t, d.rmdir('/control'), 'EPERM');
  await rejectsErrno(t, d.rename('/README.md', '/x'), 'EPERM');
  await rejectsErrno(t, d.chmod('/README.md', 0o777), 'EPERM');
  await rejectsErrno(t, d.chown('/README.md', true), 'EPERM'); // even to the owner shown: synthetic files keep theirs (SPEC §3)
  await rejectsErrno(t, d.symlink('/etc', '/link'), 'EPERM');
  await rejectsErrno(t, d.link('/hard'), 'EPERM');
  await rejectsErrno(t, d.unlink('/missing'), 'ENOENT');
  await d.utimens('/README.md', 0, 0);
  await rejectsErrno(t, d.truncate('/README.md', 0), 'EACCES');
  await d.truncate('/control/reset', 0);
  await rejectsErrno(t, d.readlink('/README.md'), 'EINVAL');
  await rejectsErrno(t, d.mknod('/' + 'x'.repeat(300), S_IFREG | 0o644), 'ENAMETOOLONG');
});

t.test('a new name that was not UTF-8 (U+FFFD, as fuse-native hands it over) is EILSEQ: it would be one name for them all', async (t) => {
  const odd = '/caf\uFFFD';
  await rejectsErrno(t, d.mknod(odd, S_IFREG | 0o644), 'EILSEQ');
  await rejectsErrno(t, d.mkdir(odd, 0o755), 'EILSEQ');
  await rejectsErrno(t, d.symlink('/etc', odd), 'EILSEQ');
  await rejectsErrno(t, d.rename('/README.md', odd), 'EILSEQ');
  await rejectsErrno(t, d.unlink(odd), 'ENOENT', 'an existing name is looked up as it is');
});

t.test(
  'mknod: the directory gets the type bits (it decides: an export makes only regular files); the open that follows may use a read-only new file once',
  async (t) => {
    const made = new Map<string, number>();
    const asked: number[] = [];
    const fileOf = (mode: number): VNode => ({
      getattr: async (): Promise<Attr> => ({ mode: S_IFREG | mode, size: 0, mtimeMs: 0, ctimeMs: 0 }),
      open: async () => ({ write: async (_offset, data) => data.length }),
    });
    const dir: VNode = {
      getattr: async () => ({ mode: 0o040755, size: 0, mtimeMs: 0, ctimeMs: 0 }),
      lookup: async (name) => (made.has(name) ? fileOf(made.get(name)!) : undefined),
      mknod: async (name, mode) => {
        asked.push(mode);
        if ((mode & 0o170000) !== 0o100000 && (mode & 0o170000) !== 0) throw new FsError('EPERM', `${name}: only regular files`);
        made.set(name, mode & 0o7777);
      },
    };
    const tree = new Dispatcher(tableDirectory([['dir', dir]]));
    await rejectsErrno(t, tree.mknod('/dir/fifo', 0o010644), 'EPERM', "a FIFO: the directory's answer");
    await rejectsErrno(t, tree.mknod('/dir/dev', 0o020644), 'EPERM', "a device: the directory's answer");
    t.same(asked, [0o010644, 0o020644], 'asked with their type bits');
    t.notOk(made.has('fifo'), 'nothing was made for them');
    await tree.mknod('/dir/ro', S_IFREG | 0o444);
    t.ok(await tree.open('/dir/ro', 1), 'the creating open writes a 0444 file, as cp and tar x do');
    await rejectsErrno(t, tree.open('/dir/ro', 1), 'EACCES', 'a later open is checked against the mode again');
    await tree.mknod('/dir/plain', 0o444);
    t.equal(made.get('plain'), 0o444, 'a mode without type bits is a regular file (mknod(2))');
  },
);
