// Issue 10, item 11: symlinks never lead out of an export, even when one is swapped in between two
// operations. One child process swaps a file (and a directory link) for a symlink to an outside file
// in a tight loop; others read, write, chmod, truncate, utime and stat it through the mount, many
// times. The outside file is never read, changed or even stat'ed. (The node usually runs as root;
// these tests do too.)
import t from 'tap';
import { chmod, mkdir, readFile, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startNode, tempDir } from '../helpers/node.js';
import { q, sh } from '../helpers/process.js';

const SECONDS = 8;
const base = await tempDir(t);
const exported = join(base, 'exported');
const outsideDir = join(base, 'outside');
await mkdir(join(exported, 'real'), { recursive: true });
await mkdir(outsideDir);
const secret = join(outsideDir, 'victim');
const SECRET = Buffer.from('SECRET '.repeat(1763)); // 12341 bytes: a size no inside file has
await writeFile(secret, SECRET);
await chmod(secret, 0o640);
await utimes(secret, 1_000_000, 1_000_000);
await writeFile(join(exported, 'victim'), 'inside\n');
await writeFile(join(exported, 'real', 'victim'), 'inside\n');
await symlink('real', join(exported, 'd'));

const node = await startNode(t, { args: ['--export', `data=${exported}:rw`] });

/** Swaps `victim` between a file and a link to the secret, and `d` between a link to `real/` and one to the outside directory. */
const SWAPPER = `
import os, sys, time
exp, secret, outside_dir, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
def swap(name, make):
    tmp = os.path.join(exp, ".tmp-" + name)
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    make(tmp)
    os.rename(tmp, os.path.join(exp, name))
def regular(path):
    with open(path, "w") as f:
        f.write("inside\\n")
end, n = time.time() + seconds, 0
while time.time() < end:
    swap("victim", regular)
    swap("d", lambda p: os.symlink("real", p))
    swap("victim", lambda p: os.symlink(secret, p))
    swap("d", lambda p: os.symlink(outside_dir, p))
    n += 1
print(n)
`;

/** Every kind of access through the mount, over and over; prints: operations, secrets seen, secret sizes seen. */
const ACCESSOR = `
import os, sys, time
root, secret_size, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
paths = [os.path.join(root, "victim"), os.path.join(root, "d", "victim")]
def read(p):
    with open(p, "rb") as f:
        return f.read()
def rewrite(p):
    fd = os.open(p, os.O_WRONLY)
    try:
        os.pwrite(fd, b"PWNED", 0)
    finally:
        os.close(fd)
def replace(p):
    with open(p, "wb") as f:
        f.write(b"PWNED\\n")
def fd_ops(p):
    fd = os.open(p, os.O_RDWR)
    try:
        os.ftruncate(fd, 3)
        os.fsync(fd)
    finally:
        os.close(fd)
ops = [read, rewrite, replace, fd_ops, lambda p: os.chmod(p, 0o600), lambda p: os.truncate(p, 2), lambda p: os.utime(p, (0, 0)), os.stat]
end, done, seen, sizes = time.time() + seconds, 0, 0, 0
while time.time() < end:
    for p in paths:
        for op in ops:
            try:
                got = op(p)
            except OSError:
                continue
            finally:
                done += 1
            if isinstance(got, bytes) and b"SECRET" in got:
                seen += 1
            if isinstance(got, os.stat_result) and got.st_size == secret_size:
                sizes += 1
print(done, seen, sizes)
`;

await t.test('a symlink swapped in after the check never leads an operation out of the export', async (tt) => {
  const root = join(node.mount, 'fs', 'data');
  const [swapper, ...accessors] = await Promise.all([
    sh(`python3 -c ${q(SWAPPER)} ${q(exported)} ${q(secret)} ${q(outsideDir)} ${SECONDS}`, { timeoutMs: 60_000 }),
    ...[1, 2].map(() => sh(`python3 -c ${q(ACCESSOR)} ${q(root)} ${SECRET.length} ${SECONDS}`, { timeoutMs: 60_000 })),
  ]);
  tt.equal(swapper?.code, 0, `the swapper ran (${swapper?.stderr.trim()})`);
  const swaps = Number(swapper?.stdout.trim());
  let operations = 0;
  for (const accessor of accessors) {
    tt.equal(accessor.code, 0, `an accessor ran (${accessor.stderr.trim()})`);
    const [done, seen, sizes] = accessor.stdout.trim().split(' ').map(Number);
    operations += done ?? 0;
    tt.equal(seen, 0, 'the secret was never read');
    tt.equal(sizes, 0, "the secret was never stat'ed");
  }
  tt.ok(swaps > 100 && operations > 500, `the race ran: ${swaps} swap rounds, ${operations} operations`);
  tt.comment(`export race: ${swaps} swap rounds, ${operations} operations through the mount`);
  const after = await stat(secret);
  tt.ok((await readFile(secret)).equals(SECRET), "the outside file's content is unchanged");
  tt.equal(after.mode & 0o7777, 0o640, 'its mode is unchanged');
  tt.equal(after.mtimeMs, 1_000_000_000, 'its mtime is unchanged');
});

await t.test('links inside the export keep working, the directory link included', async (tt) => {
  await writeFile(join(exported, 'real', 'victim'), 'inside\n');
  const r = await sh(
    `rm -f ${q(join(exported, 'd'))} && ln -s real ${q(join(exported, 'd'))} && cat ${q(join(node.mount, 'fs', 'data', 'd', 'victim'))} && echo more >> ${q(join(node.mount, 'fs', 'data', 'd', 'victim'))} && chmod 600 ${q(join(node.mount, 'fs', 'data', 'd', 'victim'))}`,
  );
  tt.equal(r.code, 0, r.stderr.trim());
  tt.equal(r.stdout, 'inside\n');
  tt.equal(await readFile(join(exported, 'real', 'victim'), 'utf8'), 'inside\nmore\n');
  tt.equal((await stat(join(exported, 'real', 'victim'))).mode & 0o777, 0o600);
});
