// A foreground daemon logging to its stderr outlives that stderr: its terminal closed (script(1)
// gone: EIO) or its reader left (a pipe: EPIPE). Its next line (the SIGHUP that follows) used to throw
// from pino's destination and end the process, mount and all; now lines are dropped and it serves on.
import t from 'tap';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { ACHERON, isMounted, spawnMounter, tempDir } from '../helpers/node.js';
import { alive, q, sh, waitFor, watchdog } from '../helpers/process.js';

const nodeArgs = (dir: string, id: string): string[] => [
  ACHERON,
  'node',
  '--node-id',
  id,
  '--mount',
  join(dir, 'mnt'),
  '--no-fs-service',
  '--state-file',
  join(dir, 'state.json'),
  '--manifest-reload-interval-ms',
  '0',
];

/** NODE.json read through the mount by a child process: the node still answers. */
async function nodeIdServed(mount: string): Promise<string | undefined> {
  const r = await sh(`cat ${q(join(mount, 'NODE.json'))}`, { timeoutMs: 5_000 });
  return r.code === 0 ? (JSON.parse(r.stdout) as { node_id?: string }).node_id : undefined;
}

t.test('acheron node: its stderr pipe closed, a SIGHUP (which logs) leaves it serving; SIGTERM ends it with 0', async (tt) => {
  const dir = await tempDir(tt);
  const mount = join(dir, 'mnt');
  const node = spawnMounter(tt, nodeArgs(dir, 'fc2-pipe'), mount);
  await waitFor(() => node.gone() || node.stderr().includes('node tree is live'), { what: 'the node live', timeoutMs: 30_000 });
  tt.notOk(node.gone(), `started (${node.stderr()})`);
  node.child.stderr?.destroy();
  process.kill(node.child.pid as number, 'SIGHUP');
  process.kill(node.child.pid as number, 'SIGHUP');
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  tt.notOk(node.gone(), 'alive after logging into the closed pipe');
  tt.equal(await nodeIdServed(mount), 'fc2-pipe', 'still serving its tree');
  process.kill(node.child.pid as number, 'SIGTERM');
  tt.same(await node.exited, { code: 0, signal: null }, 'SIGTERM: a clean stop, exit 0');
  tt.notOk(await isMounted(mount), 'unmounted');
});

t.test('acheron node in a terminal (script(1)) that closes: it serves on and stops cleanly on SIGTERM', async (tt) => {
  const dir = await tempDir(tt);
  const mount = join(dir, 'mnt');
  const pidFile = join(dir, 'pid');
  // The shell in the terminal writes the node's pid, then becomes it; script's own output is discarded.
  const inner = `echo $$ > ${q(pidFile)}; exec ${q(process.execPath)} ${nodeArgs(dir, 'fc2-tty').map(q).join(' ')}`;
  const script = spawn('script', ['-qfec', inner, '/dev/null'], { stdio: ['pipe', 'ignore', 'ignore'], detached: true });
  watchdog(script.pid as number, `kill -KILL $(cat ${q(pidFile)}) 2>/dev/null; fusermount -uz ${q(mount)} 2>/dev/null`);
  let pid = 0;
  tt.teardown(async () => {
    for (const p of [pid, script.pid as number]) if (p && (await alive(p))) process.kill(p, 'SIGKILL');
    await sh(`fusermount -uz ${q(mount)} 2>/dev/null; true`);
  });
  await waitFor(async () => (await nodeIdServed(mount)) === 'fc2-tty', { what: 'the node live in its terminal', timeoutMs: 30_000 });
  pid = Number((await sh(`cat ${q(pidFile)}`)).stdout.trim());
  tt.ok(pid > 0 && (await alive(pid)), 'the node runs');
  // The terminal closes: the kernel hangs it up (SIGHUP, which the node logs to it), its writes fail with EIO.
  process.kill(script.pid as number, 'SIGKILL');
  await new Promise((resolve) => setTimeout(resolve, 500));
  process.kill(pid, 'SIGHUP');
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  tt.ok(await alive(pid), 'alive after its terminal closed and it logged');
  tt.equal(await nodeIdServed(mount), 'fc2-tty', 'still serving its tree');
  process.kill(pid, 'SIGTERM');
  await waitFor(async () => !(await alive(pid)), { what: 'the node stopped', timeoutMs: 15_000 });
  tt.notOk(await isMounted(mount), 'it unmounted on its way out (a clean stop)');
});
