// The one liveness check of lock holders (src/store/live-process.ts): a zombie is gone, and a live pid
// counts as a holder only while it runs acheron (a daemon's pid lock) or, for the join token lock, any
// node program (a recycled pid runs something else).
import t from 'tap';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { isLiveAcheron, isLiveNodeProgram, isRunning } from '../../../src/store/live-process.js';
import { waitFor } from '../../helpers/process.js';

t.test('a sleep child runs but is no node or acheron process; once ended, it does not run', async (t) => {
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  const pid = child.pid as number;
  t.ok(await isRunning(pid), 'running');
  t.notOk(await isLiveAcheron(pid), 'but no holder');
  t.notOk(await isLiveNodeProgram(pid), 'of either kind');
  child.kill('SIGKILL');
  await once(child, 'exit');
  t.notOk(await isRunning(pid), 'gone once reaped');
});

t.test('a zombie does not run', async (t) => {
  // The forked child ends at once and its parent never waits for it. (A shell's `sleep 0 & exec sleep 30`
  // was reaped by the shell itself when the child ended before the exec, on a loaded machine.)
  const parent = spawn('python3', ['-c', 'import os, time\npid = os.fork()\nif pid == 0:\n    os._exit(0)\nprint(pid, flush=True)\ntime.sleep(30)'], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  t.teardown(() => void parent.kill('SIGKILL'));
  const [line] = (await once(parent.stdout, 'data')) as [Buffer];
  const zombie = Number(line.toString().trim());
  await waitFor(async () => !(await isRunning(zombie)), { what: `pid ${zombie} to turn zombie`, timeoutMs: 10_000 });
  t.match(await readFile(`/proc/${zombie}/stat`, 'latin1'), /\) Z /, 'a zombie indeed, not yet reaped');
  t.notOk(await isLiveAcheron(zombie), 'no holder either');
});

t.test('a process named acheron holds either lock; this node process only the token lock; nonsense pids nothing', async (t) => {
  const named = spawn('bash', ['-c', 'exec -a acheron-test-holder sleep 30'], { stdio: 'ignore' });
  t.teardown(() => void named.kill('SIGKILL'));
  await waitFor(async () => (await readFile(`/proc/${named.pid}/cmdline`, 'utf8')).startsWith('acheron-test-holder'), { what: 'the exec' });
  t.ok(await isLiveAcheron(named.pid as number), 'acheron in its command line: a daemon lock holder');
  t.ok(await isLiveNodeProgram(named.pid as number), 'and a token lock holder');
  t.ok(await isLiveNodeProgram(process.pid), 'a node program: a token lock holder');
  for (const pid of [0, -1, Number.NaN, 1.5]) t.notOk(await isRunning(pid), `pid ${pid}`);
});
