// A driver spawner that dies (kill -9, a crash): the run it had been given, which may have been
// running, says it did not finish (it said "could not be started"); a run asked for after, that it
// could not be started; `lost` and `exit` tell the node (NODE.json, the probes). A clean close is no loss.
// One that stops answering (SIGSTOP) while a run is past its kill is killed and replaced: no loss either.
import t from 'tap';
import { readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import pino from 'pino';
import { DriverSpawner } from '../../../src/runtime/driver-spawner.js';
import { ANSWER_MARGIN_MS } from '../../../src/runtime/spawner-link.js';
import type { DriverSpec } from '../../../src/runtime/run-result.js';

/** The spawner this process forked: its child running spawner-main. */
async function spawnerPid(): Promise<number> {
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (ppid === process.pid && cmdline.includes('spawner-main')) return Number(entry);
  }
  throw new Error('no driver spawner among this process’s children');
}

t.test('a run in the spawner when it dies: did not finish; a run after: could not be started', async (t) => {
  const spawner = await DriverSpawner.start(pino({ level: 'silent' }), `driver-spawner-exit-test-${process.pid}`);
  t.teardown(() => spawner.close());
  const spec = sleeper();
  const running = spawner.run(spec);
  await new Promise((resolve) => setTimeout(resolve, 300));
  process.kill(await spawnerPid(), 'SIGKILL');
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

t.test('a spawner that does not answer once a run is past its kill: replaced; that run ends timeout, one not yet due did not finish', async (t) => {
  const spawner = await DriverSpawner.start(pino({ level: 'silent' }), `driver-spawner-exit-test-${process.pid}`);
  t.teardown(() => spawner.close());
  let isLost = false;
  void spawner.lost.then(() => (isLost = true));
  // A spawner that has answered once has loaded: from then on it gets ANSWER_MARGIN_MS, not START_MARGIN_MS.
  t.match(await spawner.run({ ...sleeper(), file: '/bin/true', args: [] }), { state: 'ok' });
  const stopped = await spawnerPid();
  process.kill(stopped, 'SIGSTOP');
  t.teardown(() => {
    try {
      process.kill(stopped, 'SIGCONT');
    } catch {
      // killed, as it should be
    }
  });
  const spec = sleeper();
  const [due, notDue] = await Promise.all([
    spawner.run({ ...spec, invocationId: 'due', timeoutMs: 300, killGraceMs: 100 }),
    spawner.run({ ...spec, invocationId: 'not-due', timeoutMs: 60_000 }),
  ]);
  const why = `the driver spawner \\(pid ${stopped}\\) did not answer within ${ANSWER_MARGIN_MS} ms, so it was killed and replaced; the process may still run`;
  t.equal(due.state, 'timeout');
  t.match(due.shortMessage, new RegExp(`^/bin/sleep timed out after 300 ms: ${why}$`));
  t.equal(notDue.state, 'error');
  t.match(notDue.shortMessage, new RegExp(`^/bin/sleep did not finish: ${why}$`));
  const after = await spawner.run({ ...spec, file: '/bin/echo', args: ['after'], invocationId: 'after' });
  t.match(after, { state: 'ok', stdout: Buffer.from('after\n') }, 'a later run goes to the new spawner');
  t.not(await spawnerPid(), stopped, 'a new spawner');
  t.equal(spawner.exit, undefined, 'no exit: the node still has a spawner');
  t.equal(isLost, false, 'not lost');
});

t.test('a spawner that answers keeps a run whose output still drains past its kill', async (t) => {
  const spawner = await DriverSpawner.start(pino({ level: 'silent' }), `driver-spawner-exit-test-${process.pid}`);
  t.teardown(() => spawner.close());
  const before = await spawnerPid();
  // A grandchild outside the group keeps writing: the pipes drain for up to 2 s after the kill.
  const drains = await spawner.run({
    ...sleeper(),
    file: '/bin/sh',
    args: ['-c', 'setsid sh -c "while :; do echo x; sleep 0.05; done" & exec sleep 30'],
    timeoutMs: 200,
    killGraceMs: 100,
  });
  t.equal(drains.state, 'timeout');
  t.equal(drains.shortMessage, '/bin/sh timed out after 200 ms and was killed', 'ended by the spawner');
  t.ok(drains.durationMs > 200 + 100 + ANSWER_MARGIN_MS, `past the first ping (${drains.durationMs} ms)`);
  t.equal(await spawnerPid(), before, 'the same spawner');
});

function sleeper(): DriverSpec {
  return {
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
}
