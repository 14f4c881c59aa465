// SPEC §6: after a control server restart every node gets a fresh grace period, long enough for the
// reconnect backoff it may have reached while no server answered.
import t from 'tap';
import { NODE_OPTION_SPECS } from '../../../src/cli/node-options.js';
import { NODE_LONGEST_RECONNECT_PAUSE_MS, restartGraceMs } from '../../../src/control/restart-grace.js';
import { Failover } from '../../../src/protocol/control-urls.js';

t.test('the grace period plus the time since the node was last seen, that time capped at the longest reconnect pause', async (t) => {
  const now = 1_000_000;
  t.equal(restartGraceMs(15_000, now, now), 15_000, 'seen just now: the grace period');
  t.equal(restartGraceMs(15_000, now - 40_000, now), 55_000, 'seen 40 s ago: 40 s more');
  t.equal(restartGraceMs(500, now - 2_000, now), 2_500, 'scales with small values');
  t.equal(restartGraceMs(15_000, now - 3_600_000, now), 15_000 + NODE_LONGEST_RECONNECT_PAUSE_MS, 'seen an hour ago: the longest pause more, not an hour');
  t.equal(restartGraceMs(15_000, now + 5_000, now), 15_000, 'a last-seen time ahead of the clock adds nothing');
});

t.test('bounded by the time since the previous run of the server was last up, when known', async (t) => {
  const now = 1_000_000;
  t.equal(restartGraceMs(15_000, now - 80_000, now, now - 2_000), 17_000, 'a crash loop: 2 s down adds 2 s, not the 80 s since the node was seen');
  t.equal(restartGraceMs(15_000, now - 10_000, now, now - 40_000), 25_000, 'down longer than the node has been gone: the time since it was seen');
  t.equal(restartGraceMs(15_000, now - 3_600_000, now, now - 3_000_000), 15_000 + NODE_LONGEST_RECONNECT_PAUSE_MS, 'a long outage: still the longest pause');
  t.equal(restartGraceMs(15_000, now - 80_000, now, now + 1_000), 15_000, 'an alive time ahead of the clock adds nothing');
});

t.test("the longest pause is the node's default --reconnect-backoff-max-ms, which no jitter passes", async (t) => {
  const maxMs = NODE_OPTION_SPECS['reconnect-backoff-max-ms'].default;
  const random = Math.random;
  Math.random = () => 0.999_999;
  t.teardown(() => {
    Math.random = random;
  });
  const failover = new Failover(['ws://127.0.0.1:1'], { firstMs: NODE_OPTION_SPECS['reconnect-backoff-ms'].default, maxMs });
  const pauses = Array.from({ length: 12 }, () => failover.failed());
  t.equal(Math.max(...pauses), NODE_LONGEST_RECONNECT_PAUSE_MS, `${maxMs} ms with the largest jitter`);
});
