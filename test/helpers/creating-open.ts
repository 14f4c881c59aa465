// What the open that creates a file in an fs/ export must keep (node mount and WorldFS alike): its
// own flags, which fuse-native's `create` would drop, and the right to write a read-only new file;
// and what it must not get: setuid or setgid bits on a file the node makes as root.
import type { Test } from 'tap';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { q, sh } from './process.js';

/** `mounted`: an rw export's directory seen through a mount; `onDisk`: the same directory on the node. */
export async function checkCreatingOpens(t: Test, mounted: string, onDisk: string): Promise<void> {
  const py = (code: string, ...args: string[]) => sh(`python3 -c ${q(`import os,sys\n${code}`)} ${args.map(q).join(' ')}`);
  // Between the creating open and its write, another writer appends on the node itself: an append
  // must land after it, not at the offset the kernel last knew.
  const append = await py(
    'fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)\nopen(sys.argv[2], "a").write("host\\n")\nos.write(fd, b"mount\\n")\nos.close(fd)',
    join(mounted, 'appended.log'),
    join(onDisk, 'appended.log'),
  );
  t.equal(append.code, 0, `open(O_CREAT|O_APPEND) of a new name (${append.stderr.trim()})`);
  t.equal(await readFile(join(onDisk, 'appended.log'), 'utf8'), 'host\nmount\n', 'O_APPEND of the creating open holds');
  const excl = await py('os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_EXCL)', join(mounted, 'appended.log'));
  t.match(excl.stderr, /FileExistsError/, 'O_EXCL on an existing name is EEXIST');
  const sealed = await py(
    'fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)\nos.write(fd, b"sealed")\nos.close(fd)',
    join(mounted, 'sealed.txt'),
  );
  t.equal(sealed.code, 0, `a new 0444 file is written by the open that makes it, as by cp and tar x (${sealed.stderr.trim()})`);
  t.equal(await readFile(join(onDisk, 'sealed.txt'), 'utf8'), 'sealed');
  t.equal((await stat(join(onDisk, 'sealed.txt'))).mode & 0o777, 0o444, 'and it keeps its mode');
  const again = await sh(`/bin/echo x > ${q(join(mounted, 'sealed.txt'))}`);
  t.match(again.stderr, /Permission denied/, 'a later write open is refused by the mode');
  const fifo = await sh(`mkfifo ${q(join(mounted, 'fifo'))}`);
  t.match(fifo.stderr, /Operation not permitted/, 'mkfifo is EPERM: only regular files are made');
  // The node makes files as root: no setuid or setgid bits through the mount, made or changed.
  const tool = await py('os.close(os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o6755))', join(mounted, 'tool'));
  t.equal(tool.code, 0, tool.stderr);
  t.equal((await stat(join(onDisk, 'tool'))).mode & 0o7777, 0o755, 'a new file gets no setuid or setgid bit');
  const chmod = await sh(`chmod 6755 ${q(join(mounted, 'tool'))}`);
  t.equal(chmod.code, 0, `chmod 6755 (${chmod.stderr.trim()})`);
  t.equal((await stat(join(onDisk, 'tool'))).mode & 0o7777, 0o755, 'chmod drops them too');
  await sh(`rm -f ${q(join(onDisk, 'appended.log'))} ${q(join(onDisk, 'sealed.txt'))} ${q(join(onDisk, 'tool'))}`);
}
