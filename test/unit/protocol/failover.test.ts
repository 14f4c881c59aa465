// Failover's pauses: a short jittered one between the servers of a round, the backoff after a failed
// round, doubling to its maximum; the jitter never takes a pause above `--reconnect-backoff-max-ms`.
import t, { type Test } from 'tap';
import { Failover } from '../../../src/protocol/control-urls.js';

function withRandom(t: Test, value: number): void {
  const random = Math.random;
  Math.random = () => value;
  t.teardown(() => {
    Math.random = random;
  });
}

t.test('with the largest jitter the backoff doubles up to its maximum and stays there', async (t) => {
  withRandom(t, 0.999_999);
  const failover = new Failover(['ws://a', 'ws://b'], { firstMs: 1_000, maxMs: 5_000 });
  const pauses = Array.from({ length: 10 }, () => failover.failed());
  t.same(
    pauses.filter((_, i) => i % 2 === 0),
    [250, 250, 250, 250, 250],
    'between the servers of a round: at most 250 ms',
  );
  t.same(
    pauses.filter((_, i) => i % 2 === 1),
    [1_000, 2_000, 4_000, 5_000, 5_000],
    'after each failed round: the backoff, never above 5000 ms',
  );
});

t.test('with the smallest jitter a pause is half the backoff; a success starts it over', async (t) => {
  withRandom(t, 0);
  const failover = new Failover(['ws://a'], { firstMs: 1_000, maxMs: 5_000 });
  t.same([failover.failed(), failover.failed(), failover.failed()], [500, 1_000, 2_000]);
  failover.succeeded();
  t.equal(failover.failed(), 500, 'back to the first backoff');
});

t.test('a first backoff above the maximum is the maximum (--reconnect-backoff-ms above --reconnect-backoff-max-ms)', async (t) => {
  withRandom(t, 0.999_999);
  const failover = new Failover(['ws://a'], { firstMs: 120_000, maxMs: 60_000 });
  t.same([failover.failed(), failover.failed()], [60_000, 60_000]);
});
