// The spawner's cache of service environments (spawner-main.ts) and the daemon's mirror of it
// (driver-spawner.ts): bounded, least recently used dropped first, and a dropped environment
// travels again, so a driver never runs with a wrong or empty one.
import t from 'tap';
import { tmpdir } from 'node:os';
import pino from 'pino';
import { DriverSpawner } from '../../../src/runtime/driver-spawner.js';
import { EnvironmentCache } from '../../../src/runtime/environment-cache.js';
import type { DriverSpec } from '../../../src/runtime/run-result.js';

t.test('never holds more than its capacity; the least recently used goes first', async (t) => {
  const cache = new EnvironmentCache<string>(3);
  for (const id of [1, 2, 3]) cache.hold(id, `env ${id}`);
  cache.hold(1, 'env 1');
  cache.hold(4, 'env 4');
  t.equal(cache.size, 3);
  t.equal(cache.get(2), undefined, 'the least recently used was dropped');
  t.same(
    [1, 3, 4].map((id) => cache.get(id)),
    ['env 1', 'env 3', 'env 4'],
  );
  for (let id = 5; id < 1000; id++) cache.hold(id, `env ${id}`);
  t.equal(cache.size, 3, 'bounded however many come');
});

t.test('through a real spawner keeping 4: past the capacity, an early environment still reaches its driver intact', async (t) => {
  const spawner = await DriverSpawner.start(pino({ level: 'silent' }), `environment-cache-test-${process.pid}`, { environmentCacheSize: 4 });
  t.teardown(() => spawner.close());
  const spec = (n: number): DriverSpec => ({
    file: '/bin/sh',
    args: ['-c', 'printf %s "$WHICH"'],
    cwd: tmpdir(),
    env: { WHICH: `env-${n}`, PATH: '/usr/bin:/bin' },
    invocationId: `i-${n}`,
    input: Buffer.alloc(0),
    timeoutMs: 10_000,
    killGraceMs: 200,
    maxOutputBytes: 1 << 20,
  });
  const first = spec(0);
  t.equal((await spawner.run(first)).stdout.toString(), 'env-0');
  // More distinct environments than the spawner keeps, a few at a time.
  const count = 10;
  for (let n = 1; n <= count; n += 3) {
    const batch = Array.from({ length: Math.min(3, count + 1 - n) }, (_, i) => spec(n + i));
    const results = await Promise.all(batch.map((s) => spawner.run(s)));
    // Each run with how it ended: CI once saw an empty stdout here, and the state would say why.
    t.same(
      results.map((r) => `${r.state}: ${r.stdout.toString()}${r.state === 'ok' ? '' : ` (${r.shortMessage})`}`),
      batch.map((s) => `ok: ${s.env.WHICH}`),
      `environments ${n}…${n + batch.length - 1}`,
    );
  }
  const again = await spawner.run(first);
  t.equal(again.state, 'ok', again.shortMessage);
  t.equal(again.stdout.toString(), 'env-0', 'the dropped environment travelled again');
});
