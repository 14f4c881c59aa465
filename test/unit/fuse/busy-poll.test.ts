import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { BusyPoll } from '../../../src/fuse/busy-poll.js';

/**
 * Share of `fn`'s wall time the event loop spent outside its poll wait. It counts time the process
 * was runnable but not scheduled as idle or busy just as the loop was, so, unlike CPU time, it does
 * not shrink on a busy machine: polling for a 10 ms window of a 40 ms sleep reads about 0.25,
 * sleeping reads near 0.
 */
async function busyShare(fn: () => Promise<void>): Promise<number> {
  const before = performance.eventLoopUtilization();
  await fn();
  return performance.eventLoopUtilization(before).utilization;
}

/**
 * The least busy of three runs: for checks that the loop slept. Other work of this process (a
 * collection, a late callback) only ever adds busy time, and seldom three times in a row.
 */
async function leastBusyShare(fn: () => Promise<void>): Promise<number> {
  const shares = [await busyShare(fn), await busyShare(fn), await busyShare(fn)];
  return Math.min(...shares);
}

const polled = (share: number): boolean => share >= 0.12;
const slept = (share: number): boolean => share < 0.08;
const pct = (share: number): string => `${(share * 100).toFixed(0)} % of 40 ms busy`;

t.test('after a reply the loop keeps turning for the window, then sleeps', async (tt) => {
  const poll = new BusyPoll(10_000);
  tt.ok(poll.active, 'a new mount polls');
  const spun = await busyShare(async () => {
    poll.replied();
    await sleep(40);
  });
  tt.ok(polled(spun), `the loop polled instead of sleeping (${pct(spun)})`);
  const idle = await leastBusyShare(() => sleep(40));
  tt.ok(slept(idle), `and slept once the window had passed (${pct(idle)})`);
});

t.test('no polling right after an operation that waited for another process', async (tt) => {
  const poll = new BusyPoll(10_000);
  const quiet = await leastBusyShare(async () => {
    poll.replied(5_000_000n); // 5 ms: it waited for a driver
    await sleep(40);
  });
  tt.ok(slept(quiet), `the loop slept (${pct(quiet)})`);
  const spun = await busyShare(async () => {
    poll.replied(20_000n); // a quick one, well after the quiet time
    await sleep(40);
  });
  tt.ok(polled(spun), `a quick operation later polls again (${pct(spun)})`);
});

t.test('a window of 0 never polls', async (tt) => {
  const poll = new BusyPoll(0);
  tt.notOk(poll.active);
  const used = await leastBusyShare(async () => {
    poll.replied();
    poll.arrived();
    poll.replied();
    await sleep(40);
  });
  tt.ok(slept(used), `the loop slept (${pct(used)})`);
});

/** A poll whose replies were never followed soon enough by an operation, until it stopped polling. */
async function slowClients(): Promise<{ poll: BusyPoll; misses: number }> {
  const poll = new BusyPoll(100);
  let misses = 0;
  for (; misses < 30 && poll.active; misses++) {
    poll.replied();
    await sleep(3); // far beyond the 100 µs window: polling did not catch it
    poll.arrived();
  }
  return { poll, misses };
}

t.test('polling stops while operations come later than the window, and a probe turns it back on', async (tt) => {
  const { poll, misses } = await slowClients();
  tt.notOk(poll.active, `slow clients: no polling (after ${misses} misses)`);
  // Measured on a second one, three times: the replies counted below start from this poll's state.
  const quiet = (await slowClients()).poll;
  const idle = await leastBusyShare(async () => {
    quiet.replied();
    await sleep(40);
  });
  tt.ok(slept(idle), `an inactive poll lets the loop sleep (${pct(idle)})`);
  // Replies it slept on do not count, however soon the next operation came (it paid the wake);
  // the probe, a reply it polls for although inactive, does.
  let replies = 0;
  for (; replies < 20 && !poll.active; replies++) {
    poll.replied();
    poll.arrived();
  }
  tt.ok(poll.active, `a probe that catches the next operation turns polling back on (reply ${replies} since it stopped)`);
  tt.ok(replies > 2, 'not any reply: only the probe');
});

t.test('a window outside 0 to 10 ms is refused', async (tt) => {
  for (const bad of [Number.NaN, -1, Number.POSITIVE_INFINITY, 10_001]) tt.throws(() => new BusyPoll(bad), RangeError, `${bad}`);
  tt.doesNotThrow(() => new BusyPoll(10_000));
});
