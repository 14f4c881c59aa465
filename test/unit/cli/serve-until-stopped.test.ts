// serveUntilStopped's exit: 0 after a stop, 1 only when a second signal cut the daemon's shutdown
// grace short. A second signal that came when the stop was past its grace (unmounting, closing the
// journal) exited 1 and logged a forced stop that cut nothing.
import t, { type Test } from 'tap';
import pino from 'pino';
import { serveUntilStopped } from '../../../src/cli/daemonize.js';
import { LogDestination } from '../../../src/cli/logger.js';

/** serveUntilStopped's signal listeners go with the test: this process runs other unit files after it (test/helpers/unit-shard.ts). */
function removeAddedSignalListeners(tt: Test): void {
  const signals = ['SIGHUP', 'SIGINT', 'SIGTERM'] as const;
  const before = new Map(signals.map((signal) => [signal, process.listeners(signal)]));
  tt.teardown(() => {
    for (const signal of signals) for (const listener of process.listeners(signal)) if (!before.get(signal)?.includes(listener)) process.off(signal, listener);
  });
}

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
    removeAddedSignalListeners(tt);
    const { daemon, calls, end } = fakeDaemon(cuts);
    const exit = serveUntilStopped(
      async () => daemon,
      { log: pino({ level: 'silent' }), destination: new LogDestination(2) },
      () => undefined,
    );
    await new Promise((resolve) => setImmediate(resolve));
    process.emit('SIGTERM', 'SIGTERM');
    process.emit('SIGINT', 'SIGINT');
    end();
    tt.equal(await exit, code);
    tt.same(calls, ['stop SIGTERM', 'forceStop SIGINT']);
  });
}

t.test('SIGHUP never ends it: logged while starting, then handed to the live daemon (the node reloads, WorldFS logs)', async (tt) => {
  removeAddedSignalListeners(tt);
  const { daemon, end } = fakeDaemon(false);
  const lines: string[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line).msg as string) });
  let startNow!: () => void;
  const starting = new Promise<void>((resolve) => (startNow = resolve));
  const hangups: unknown[] = [];
  const exit = serveUntilStopped(
    async () => {
      await starting;
      return daemon;
    },
    // Logging to stderr: a SIGHUP reopens nothing, but its line still comes after the (empty) reopen has resolved.
    { log, destination: new LogDestination(2) },
    (live) => hangups.push(live),
  );
  await new Promise((resolve) => setImmediate(resolve));
  process.emit('SIGHUP', 'SIGHUP');
  await new Promise((resolve) => setImmediate(resolve));
  tt.match(lines, [/^SIGHUP while starting/], 'while starting: logged');
  tt.same(hangups, [], 'no daemon to hand it to yet');
  startNow();
  await new Promise((resolve) => setImmediate(resolve));
  process.emit('SIGHUP', 'SIGHUP');
  await new Promise((resolve) => setImmediate(resolve));
  tt.equal(hangups.length, 1, 'once live: the daemon takes it');
  tt.equal(hangups[0], daemon);
  process.emit('SIGTERM', 'SIGTERM');
  end();
  tt.equal(await exit, 0, 'a SIGTERM after it stops it as ever');
});
