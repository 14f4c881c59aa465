// serveUntilStopped's exit: 0 after a stop, 1 only when a second signal cut the daemon's shutdown
// grace short. A second signal that came when the stop was past its grace (unmounting, closing the
// journal) exited 1 and logged a forced stop that cut nothing.
import t from 'tap';
import pino from 'pino';
import { serveUntilStopped } from '../../../src/cli/daemonize.js';

/** A daemon whose stop ends when the test says; forceStop answers `cuts`. */
function fakeDaemon(cuts: boolean) {
  let end!: () => void;
  const done = new Promise<void>((resolve) => (end = resolve));
  const calls: string[] = [];
  return {
    calls,
    end,
    daemon: {
      done,
      stop: async (reason: string) => void calls.push(`stop ${reason}`),
      forceStop: (reason: string) => (calls.push(`forceStop ${reason}`), cuts),
    },
  };
}

for (const [cuts, code] of [
  [true, 1],
  [false, 0],
] as const) {
  t.test(`a second signal whose forceStop ${cuts ? 'cut the grace short' : 'found no grace left'}: exit ${code}`, async (tt) => {
    const { daemon, calls, end } = fakeDaemon(cuts);
    const exit = serveUntilStopped(async () => daemon, pino({ level: 'silent' }));
    await new Promise((resolve) => setImmediate(resolve));
    process.emit('SIGTERM', 'SIGTERM');
    process.emit('SIGINT', 'SIGINT');
    end();
    tt.equal(await exit, code);
    tt.same(calls, ['stop SIGTERM', 'forceStop SIGINT']);
  });
}
