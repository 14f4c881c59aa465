// Files of a node's fs/ export held open through WorldFS while the control server, or the node, is
// killed and started again: the relay session or link they were opened on is gone and the node
// released them, so each later read, write and flush fails with ESTALE (not EBADF, which says the
// caller erred), the close of a read-only file succeeds, and a fresh open works (docs/worldfs.md,
// "Open files and a lost link").
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { joinToken, QUICK_NODE_ARGS, startControl, type RunningControl } from '../helpers/control.js';
import { startNode, tempDir, type RunningNode } from '../helpers/node.js';
import { sh, q, waitFor } from '../helpers/process.js';
import { startWorld } from '../helpers/world.js';

const NODE_ID = 'test-node';

/**
 * Opens argv[1] read-only and argv[2] write-only (writing "abc"), says "open", then on each stdin
 * line runs the next step on those descriptors and prints its outcome: "ok <bytes>" or the errno name.
 */
const PY_HOLDER = `
import errno, os, sys
r = os.open(sys.argv[1], os.O_RDONLY)
w = os.open(sys.argv[2], os.O_WRONLY)
os.write(w, b"abc")
print("open", flush=True)
steps = [lambda: os.pread(r, 5, 0), lambda: os.write(w, b"def"), lambda: os.close(r), lambda: os.close(w)]
for step in steps:
    sys.stdin.readline()
    try:
        print("ok", step(), flush=True)
    except OSError as e:
        print(errno.errorcode[e.errno], flush=True)
`;

/** A control server, a node exporting `data` and a WorldFS mount; a python3 child holding big.bin and w.txt open through it. */
async function holding(t: Test): Promise<{ control: RunningControl; node: RunningNode; data: string; exported: string; next(): Promise<string> }> {
  const control = await startControl(t);
  const dir = await tempDir(t);
  const exported = join(dir, 'exported');
  await mkdir(exported);
  await writeFile(join(exported, 'big.bin'), 'hello world');
  await writeFile(join(exported, 'w.txt'), '');
  const tokenFile = join(dir, 'join-token');
  await writeFile(tokenFile, `${await joinToken(control.dataDir)}\n`, { mode: 0o600 });
  const node = await startNode(t, {
    args: ['--control-url', control.url, '--join-token-file', tokenFile, '--export', `data=${exported}:rw`, ...QUICK_NODE_ARGS],
  });
  const world = await startWorld(t, { url: control.url, token: control.adminToken });
  const data = join(world.node(NODE_ID), 'fs', 'data');
  await readable(data);
  const holder = spawn('python3', ['-c', PY_HOLDER, join(data, 'big.bin'), join(data, 'w.txt')], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.teardown(() => void holder.kill('SIGKILL'));
  const lines = createInterface({ input: holder.stdout })[Symbol.asyncIterator]();
  t.equal((await lines.next()).value, 'open', 'both files open, "abc" written');
  const next = async (): Promise<string> => {
    holder.stdin.write('\n');
    return String((await lines.next()).value);
  };
  return { control, node, data, exported, next };
}

/** Once a fresh open through WorldFS reads big.bin, the mount and the node are connected (again). */
function readable(data: string): Promise<boolean> {
  return waitFor(async () => (await sh(`cat ${q(join(data, 'big.bin'))}`)).stdout === 'hello world', { what: 'the export through WorldFS', timeoutMs: 30_000 });
}

/** The held fds after the link was lost: every use ESTALE, a quiet close of the read-only one, and a fresh open that works. */
async function staleAfterwards(t: Test, { data, exported, next }: { data: string; exported: string; next(): Promise<string> }): Promise<void> {
  t.equal(await next(), 'ESTALE', 'a read on the fd opened before the link was lost');
  t.equal(await next(), 'ESTALE', 'a write on it');
  t.equal(await next(), 'ok None', 'closing the read-only fd succeeds (nothing to flush, release is quiet)');
  t.equal(await next(), 'ESTALE', 'closing the write-only fd says its last write did not reach the node');
  t.equal(await readFile(join(exported, 'w.txt'), 'utf8'), 'abc', 'only what was written before is in the file');
  const again = await sh(`printf def >> ${q(join(data, 'w.txt'))} && cat ${q(join(data, 'w.txt'))}`);
  t.equal(again.stdout, 'abcdef', `a fresh open writes and reads (${again.stderr.trim()})`);
}

t.test('fds held across a control server restart (kill -9)', async (t) => {
  const held = await holding(t);
  await held.control.kill9();
  await held.control.restart();
  await readable(held.data);
  await staleAfterwards(t, held);
});

t.test('fds held across a node restart (kill -9): the node answers ESTALE, not EBADF', async (t) => {
  const held = await holding(t);
  process.kill(-(held.node.child.pid as number), 'SIGKILL');
  await held.node.exited;
  await held.node.restart();
  await readable(held.data);
  await staleAfterwards(t, held);
});
