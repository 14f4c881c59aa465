// A driver spawner that dies (kill -9, a crash): the run it had been given, which may have been
// running, says it did not finish (it said "could not be started"); a run asked for after, that it
// could not be started; `lost` and `exit` tell the node (NODE.json, the probes). A clean close is no loss.
import t from 'tap';
import { readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import pino from 'pino';
import { DriverSpawner } from '../../../src/runtime/driver-spawner.js';
import type { DriverSpec } from '../../../src/runtime/run-result.js';

/** The spawners this process forked: its children running spawner-main. */
async function spawnerPids(): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (ppid === process.pid && cmdline.includes('spawner-main')) pids.push(Number(entry));
  }
  return pids;
}

/** The spawner `start` forks (not one another test file of this process left: test/helpers/unit-shard.ts). */
async function startedSpawner(start: () => Promise<DriverSpawner>): Promise<{ spawner: DriverSpawner; pid: number }> {
  const before = await spawnerPids();
  const spawner = await start();
  const pid = (await spawnerPids()).find((candidate) => !before.includes(candidate));
  if (pid === undefined) throw new Error('no new driver spawner among this process’s children');
  return { spawner, pid };
}

t.test('a run in the spawner when it dies: did not finish; a run after: could not be started', async (t) => {
  const { spawner, pid } = await startedSpawner(() => DriverSpawner.start(pino({ level: 'silent' }), `driver-spawner-exit-test-${process.pid}`));
  t.teardown(() => spawner.close());
  const spec: DriverSpec = {
    file: '/bin/sleep',
    args: ['30'],
    cwd: tmpdir(),
    env: { PATH: '/usr/bin:/bin' },
    invocationId: 'i-1',
    input: Buffer.alloc(0),
    timeoutMs: 60_000,
    killGraceMs: 200,
    maxOutputBytes: 1 << 20,
  };
  const running = spawner.run(spec);
  await new Promise((resolve) => setTimeout(resolve, 300));
  process.kill(pid, 'SIGKILL');
  const ended = await running;
  t.equal(ended.state, 'error');
  t.equal(ended.shortMessage, '/bin/sleep did not finish: driver spawner exited (SIGKILL)');
  const after = await spawner.run({ ...spec, invocationId: 'i-2' });
  t.equal(after.shortMessage, '/bin/sleep could not be started: driver spawner exited (SIGKILL)');
  await t.resolves(spawner.lost, 'lost settles');
  t.match(spawner.exit, { reason: 'driver spawner exited (SIGKILL)', exitedMs: Number }, 'exit says how');
});

t.test('a spawner stopped by close() is not lost', async (t) => {
  const spawner = await DriverSpawner.start(pino({ level: 'silent' }), `driver-spawner-exit-test-${process.pid}`);
  t.equal(spawner.exit, undefined, 'no exit while it runs');
  let isLost = false;
  void spawner.lost.then(() => (isLost = true));
  await spawner.close();
  // close() resolved after the exit was handled: a loss would have settled by the next turn.
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(isLost, false, 'lost stays pending');
  t.match(spawner.exit, { reason: 'driver spawner exited (code 0)' });
});
