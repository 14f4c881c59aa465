import t from 'tap';
import { Limiter } from '../../../src/runtime/limiter.js';
import { InvocationIds } from '../../../src/runtime/invocation-id.js';
import { addLatency, latencyPercentiles } from '../../../src/runtime/latency.js';

t.test('limiter runs at most N at once, in arrival order', async (t) => {
  const limiter = new Limiter(2);
  const order: number[] = [];
  let active = 0;
  let peak = 0;
  await Promise.all(
    [1, 2, 3, 4, 5].map((n) =>
      limiter.schedule(async () => {
        active++;
        peak = Math.max(peak, active);
        order.push(n);
        await new Promise((r) => setTimeout(r, 10));
        active--;
      }),
    ),
  );
  t.equal(peak, 2);
  t.same(order, [1, 2, 3, 4, 5]);
  t.equal(limiter.running, 0);
  t.equal(limiter.queued, 0);
});

t.test('the wait bound counts full rounds of the slots ahead: none while a slot is free', async (t) => {
  const limiter = new Limiter(2);
  const bounds: number[] = [];
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const jobs: Promise<void>[] = [];
  for (let i = 0; i < 5; i++) {
    bounds.push(limiter.waitBoundMs(1000));
    jobs.push(limiter.schedule(() => gate));
  }
  t.same(bounds, [0, 0, 1000, 1000, 2000], 'two slots: the 3rd and 4th wait one round, the 5th two');
  limiter.setConcurrency(1);
  t.equal(limiter.waitBoundMs(1000), 5000, 'fewer slots: more rounds');
  release();
  await Promise.all(jobs);
  t.equal(limiter.waitBoundMs(1000), 0);
});

t.test('a failing job frees its slot', async (t) => {
  const limiter = new Limiter(1);
  await t.rejects(
    limiter.schedule(async () => {
      throw new Error('x');
    }),
  );
  t.equal(await limiter.schedule(async () => 7), 7);
});

t.test('invocation ids are unique and sort in creation order', async (t) => {
  const ids = new InvocationIds();
  const list = [ids.next(1000), ids.next(1000), ids.next(1001), ids.next(999)];
  t.equal(new Set(list).size, 4);
  t.same([...list].sort(), list);
});

t.test('latency percentiles', async (t) => {
  const samples: number[] = [];
  t.same(latencyPercentiles(samples), { p50: null, p90: null, p99: null });
  for (let i = 1; i <= 100; i++) addLatency(samples, i, 100);
  t.same(latencyPercentiles(samples), { p50: 50, p90: 90, p99: 99 });
  addLatency(samples, 1000, 100);
  t.equal(samples.length, 100, 'the oldest sample goes');
  t.same(samples.slice(0, 1), [2]);
});
