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

t.test('after a reply the loop keeps turning for the window, then sleeps', async (tt) => {
  const poll = new BusyPoll(30_000);
  tt.ok(poll.active, 'a new mount polls');
  const spun = await cpuMs(async () => {
    poll.replied();
    await sleep(60);
  });
  tt.ok(spun >= 8, `the loop polled instead of sleeping (${spun.toFixed(1)} ms of CPU in 60 ms)`);
  const idle = await cpuMs(() => sleep(60));
  tt.ok(idle < spun / 2, `and slept once the window had passed (${idle.toFixed(1)} ms of CPU in 60 ms)`);
});

t.test('no polling right after an operation that waited for another process', async (tt) => {
  const poll = new BusyPoll(30_000);
  const quiet = await cpuMs(async () => {
    poll.replied(5_000_000n); // 5 ms: it waited for a driver
    await sleep(60);
  });
  tt.ok(quiet < 8, `the loop slept (${quiet.toFixed(1)} ms of CPU in 60 ms)`);
  const spun = await cpuMs(async () => {
    poll.replied(20_000n); // a quick one, well after the quiet time
    await sleep(60);
  });
  tt.ok(spun >= 8 && spun > quiet, `a quick operation later polls again (${spun.toFixed(1)} ms of CPU in 60 ms)`);
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
  tt.ok(used < 8, `the loop slept (${used.toFixed(1)} ms of CPU in 60 ms)`);
});

t.test('polling stops while operations come later than the window, and resumes when they come sooner', async (tt) => {
  const poll = new BusyPoll(100);
  for (let i = 0; i < 12 && poll.active; i++) {
    poll.replied();
    await sleep(3); // far beyond the 100 µs window: polling would not have caught it
    poll.arrived();
  }
  tt.notOk(poll.active, 'slow clients: no polling');
  const idle = await cpuMs(async () => {
    poll.replied();
    await sleep(60);
  });
  tt.ok(idle < 8, `an inactive poll lets the loop sleep (${idle.toFixed(1)} ms of CPU in 60 ms)`);
  for (let i = 0; i < 12 && !poll.active; i++) {
    poll.replied();
    poll.arrived(); // at once: well within the window
  }
  tt.ok(poll.active, 'a burst of quick operations turns polling back on');
});
