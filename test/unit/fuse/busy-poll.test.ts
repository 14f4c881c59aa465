import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { BusyPoll } from '../../../src/fuse/busy-poll.js';

/** CPU this process used (ms) while `fn` ran. */
async function cpuMs(fn: () => Promise<void>): Promise<number> {
  const before = process.cpuUsage();
  await fn();
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1000;
}

// What 60 ms of sleeping costs here; a 10 ms poll costs up to 10 ms more (less if preempted).
const asleep = await cpuMs(() => sleep(60));
const polled = (ms: number): boolean => ms >= asleep + 6;
const slept = (ms: number): boolean => ms < asleep + 4;

t.test('after a reply the loop keeps turning for the window, then sleeps', async (tt) => {
  const poll = new BusyPoll(10_000);
  tt.ok(poll.active, 'a new mount polls');
  const spun = await cpuMs(async () => {
    poll.replied();
    await sleep(60);
  });
  tt.ok(polled(spun), `the loop polled instead of sleeping (${spun.toFixed(1)} ms of CPU in 60 ms)`);
  const idle = await cpuMs(() => sleep(60));
  tt.ok(slept(idle), `and slept once the window had passed (${idle.toFixed(1)} ms of CPU in 60 ms)`);
});

t.test('no polling right after an operation that waited for another process', async (tt) => {
  const poll = new BusyPoll(10_000);
  const quiet = await cpuMs(async () => {
    poll.replied(5_000_000n); // 5 ms: it waited for a driver
    await sleep(60);
  });
  tt.ok(slept(quiet), `the loop slept (${quiet.toFixed(1)} ms of CPU in 60 ms)`);
  const spun = await cpuMs(async () => {
    poll.replied(20_000n); // a quick one, well after the quiet time
    await sleep(60);
  });
  tt.ok(polled(spun), `a quick operation later polls again (${spun.toFixed(1)} ms of CPU in 60 ms)`);
});

t.test('a window of 0 never polls', async (tt) => {
  const poll = new BusyPoll(0);
  tt.notOk(poll.active);
  const used = await cpuMs(async () => {
    poll.replied();
    poll.arrived();
    poll.replied();
    await sleep(60);
  });
  tt.ok(slept(used), `the loop slept (${used.toFixed(1)} ms of CPU in 60 ms)`);
});

t.test('polling stops while operations come later than the window, and a probe turns it back on', async (tt) => {
  const poll = new BusyPoll(100);
  let misses = 0;
  for (; misses < 30 && poll.active; misses++) {
    poll.replied();
    await sleep(3); // far beyond the 100 µs window: polling did not catch it
    poll.arrived();
  }
  tt.notOk(poll.active, `slow clients: no polling (after ${misses} misses)`);
  const idle = await cpuMs(async () => {
    poll.replied();
    await sleep(60);
  });
  tt.ok(slept(idle), `an inactive poll lets the loop sleep (${idle.toFixed(1)} ms of CPU in 60 ms)`);
  poll.arrived();
  // Replies it slept on do not count, however soon the next operation came (it paid the wake);
  // the probe, a reply it polls for although inactive, does.
  let replies = 1;
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
