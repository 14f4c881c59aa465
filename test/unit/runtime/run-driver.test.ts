// runDriver stops waiting for output pipes that stay open after the driver exits (a grandchild
// holds them), but not while output is still arriving: a spawner whose event loop was held up
// when the driver exited reads what came meanwhile instead of cutting it off.
import t from 'tap';
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

t.test('pipes held open by a silent grandchild are closed shortly after the exit', async (t) => {
  const started = performance.now();
  // setsid: the grandchild leaves the driver's process group, so the group's kill spares it.
  const result = await runDriver(spec('echo head; setsid sleep 5 & echo $! >&2; exit 0'));
  const waited = performance.now() - started;
  const grandchild = Number(result.stderr.toString());
  t.teardown(() => {
    try {
      if (Number.isInteger(grandchild) && grandchild > 0) process.kill(grandchild, 'SIGKILL');
    } catch {
      // gone already
    }
  });
  t.equal(result.state, 'ok');
  t.equal(result.stdout.toString(), 'head\n');
  t.ok(waited < 3000, `returned after ${Math.round(waited)} ms, not when the grandchild exits`);
});
