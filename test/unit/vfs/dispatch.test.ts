// The SPEC §3 errno table, answered once by the dispatcher for nodes that do not implement an op.
import t from 'tap';
import { rejectsErrno } from '../../helpers/errno.js';
import { Dispatcher } from '../../../src/vfs/dispatch.js';
import { tableDirectory } from '../../../src/vfs/directory.js';
import { ctlFile, snapshotFile, staticFile } from '../../../src/vfs/files.js';

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

t.test('defaults: create EACCES; mkdir, unlink, rmdir, rename, chmod, chown, symlink, link EPERM; utimens ok', async (t) => {
  await rejectsErrno(t, d.create('/new', 0o644, 1), 'EACCES');
  await rejectsErrno(t, d.mkdir('/dir', 0o755), 'EPERM');
  await rejectsErrno(t, d.unlink('/README.md'), 'EPERM');
  await rejectsErrno(t, d.rmdir('/control'), 'EPERM');
  await rejectsErrno(t, d.rename('/README.md', '/x'), 'EPERM');
  await rejectsErrno(t, d.chmod('/README.md', 0o777), 'EPERM');
  await rejectsErrno(t, d.chown('/README.md'), 'EPERM');
  await rejectsErrno(t, d.symlink('/etc', '/link'), 'EPERM');
  await rejectsErrno(t, d.refuse('/README.md', 'hard links'), 'EPERM');
  await rejectsErrno(t, d.unlink('/missing'), 'ENOENT');
  await d.utimens('/README.md', 0, 0);
  await rejectsErrno(t, d.truncate('/README.md', 0), 'EACCES');
  await d.truncate('/control/reset', 0);
  await rejectsErrno(t, d.readlink('/README.md'), 'EINVAL');
  await rejectsErrno(t, d.create('/' + 'x'.repeat(300), 0o644, 1), 'ENAMETOOLONG');
});
