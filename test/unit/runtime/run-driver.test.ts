// runDriver stops waiting for output pipes that stay open after the driver exits (a grandchild
// holds them), but not while output is still arriving: a spawner whose event loop was held up
// when the driver exited reads what came meanwhile instead of cutting it off. A grandchild that
// keeps writing holds the run 2 s at most, and the run is the driver's: ok, not a timeout.
import { setTimeout as setTimeoutPromise } from 'node:timers/promises';
import t, { type Test } from 'tap';
import { runDriver } from '../../../src/runtime/run-driver.js';
import type { DriverSpec } from '../../../src/runtime/run-result.js';

const spec = (script: string): DriverSpec => ({
  file: '/bin/sh',
  args: ['-c', script],
  cwd: '/',
  env: { PATH: '/usr/bin:/bin' },
  input: Buffer.alloc(0),
  invocationId: 'inv-test',
  timeoutMs: 10_000,
  killGraceMs: 500,
  maxOutputBytes: 1 << 20,
});

function holdEventLoop(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

t.test('output written after the exit while the event loop was held up is kept', async (t) => {
  // The shell exits at once; its background child writes 300 ms later, while the loop is held.
  // Held in the check phase: the next turn of the loop runs its expired timers before it polls the pipe.
  const running = runDriver(spec('(sleep 0.3; echo tail) & echo head'));
  setTimeout(() => setImmediate(() => holdEventLoop(700)), 100);
  const result = await running;
  t.equal(result.state, 'ok');
  t.equal(result.stdout.toString(), 'head\ntail\n');
});

t.test('output written while the loop was held up between the quiet timer and its check is kept', async (t) => {
  // The loop is held past both the test's timer and the drain's quiet timer (started at the exit, a
  // few ms in): they fire in one timers phase, so the test's hold and the drain's check then run in
  // one check phase with no poll between them, and the tail is written during the hold.
  const running = runDriver(spec('(sleep 0.3; echo tail) & echo head'));
  setTimeout(() => setImmediate(() => holdEventLoop(700)), 100);
  await setTimeoutPromise(50);
  holdEventLoop(200);
  const result = await running;
  t.equal(result.state, 'ok');
  t.equal(result.stdout.toString(), 'head\ntail\n');
});

/** Kills the grandchild whose pid the driver printed on stderr, at the test's end. */
function killGrandchild(t: Test, stderr: Buffer): void {
  const pid = Number(stderr.toString().trim().split('\n')[0]);
  t.teardown(() => {
    try {
      if (Number.isInteger(pid) && pid > 0) process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  });
}

t.test('a grandchild that keeps writing holds the run 2 s at most; it ends as the driver did', async (t) => {
  const started = performance.now();
  // Writes every 50 ms for 10 s, outside the driver's process group; the driver exits 0 at once. timeout_ms is 1 s.
  const result = await runDriver({
    ...spec("setsid sh -c 'for i in $(seq 200); do echo tick; sleep 0.05; done' & echo $! >&2; echo head"),
    timeoutMs: 1000,
  });
  const waited = performance.now() - started;
  killGrandchild(t, result.stderr);
  t.ok(waited < 5000, `returned after ${Math.round(waited)} ms, not when the grandchild stops`);
  t.equal(result.state, 'ok', 'not relabelled a timeout: the driver itself exited 0');
  t.match(result.stdout.toString(), /^head\ntick\n/, 'what came before the pipes were closed is kept');
});

t.test('pipes held open by a silent grandchild are closed shortly after the exit', async (t) => {
  const started = performance.now();
  // setsid: the grandchild leaves the driver's process group, so the group's kill spares it.
  const result = await runDriver(spec('echo head; setsid sleep 5 & echo $! >&2; exit 0'));
  const waited = performance.now() - started;
  killGrandchild(t, result.stderr);
  t.equal(result.state, 'ok');
  t.equal(result.stdout.toString(), 'head\n');
  t.ok(waited < 3000, `returned after ${Math.round(waited)} ms, not when the grandchild exits`);
});

t.test('output past max_output_bytes stops the driver at once, on stdout or stderr (execa only stops reading)', async (t) => {
  for (const stream of ['', '>&2']) {
    const started = performance.now();
    // It writes past the cap, then would sleep for 30 s: the run was held until then, or until its timeout.
    const result = await runDriver({ ...spec(`head -c 5000 /dev/zero ${stream}; sleep 30`), maxOutputBytes: 1000, timeoutMs: 20_000 });
    const waited = performance.now() - started;
    t.ok(waited < 5000, `${stream || 'stdout'}: returned after ${Math.round(waited)} ms`);
    const on = stream ? 'stderr' : 'stdout';
    t.match(
      result,
      { state: 'error', outputCapped: true, signal: 'SIGTERM', shortMessage: `/bin/sh exceeded max_output_bytes (1000) on ${on} and was killed` },
      'the stream named',
    );
  }
});

t.test('a driver that closes its stdout and runs on is not taken for one past the cap', async (t) => {
  const result = await runDriver(spec('echo head; exec 1>&-; sleep 0.3; exit 0'));
  t.match(result, { state: 'ok', outputCapped: false, stdout: Buffer.from('head\n') });
});
