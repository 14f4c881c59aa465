// The one reconnect loop of every long-lived client (src/protocol/reconnect-loop.ts): after a session
// ends, a pause (backoff once every server failed); stop() and wake() cut a pause short, and wake()
// starts the backoff over (new credentials: what failed may work now).
import t from 'tap';
import { ReconnectLoop } from '../../../src/protocol/reconnect-loop.js';

/** A loop whose every session fails, recording when each started. */
function failingLoop(backoff: { firstMs: number; maxMs: number }) {
  const starts: number[] = [];
  const pauses: number[] = [];
  const loop = new ReconnectLoop({
    urls: ['ws://127.0.0.1:1'],
    backoff,
    session: async () => {
      starts.push(Date.now());
      throw new Error('refused');
    },
    failed: () => undefined,
    beforePause: (pauseMs) => void pauses.push(pauseMs),
  });
  return { loop, starts, pauses };
}

t.test('wake() ends a pause at once and starts the backoff over', async (t) => {
  const { loop, starts, pauses } = failingLoop({ firstMs: 10_000, maxMs: 60_000 });
  const running = loop.start();
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.equal(starts.length, 1, 'one session, then a long pause');
  const wokeAt = Date.now();
  loop.wake();
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.equal(starts.length, 2, 'the next session started');
  t.ok((starts[1] as number) - wokeAt < 40, `at once (${(starts[1] as number) - wokeAt} ms after wake)`);
  t.ok((pauses[1] as number) <= 1.5 * 10_000, `the pause after it is a first pause again (${pauses[1]} ms)`);
  loop.stop();
  await running;
  t.equal(starts.length, 2, 'stop() ended the loop without another session');
});
