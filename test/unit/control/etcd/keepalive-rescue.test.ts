// rescueKeepalives on a stand-in lease (no etcd): a keepalive its stream does not answer is sent
// again on fresh streams, each with the wait as deadline, until one is answered; an answered one,
// or a lease that is gone, is left alone.
import t from 'tap';
import { EventEmitter } from 'node:events';
import { GRPCDeadlineExceededError, type Lease } from 'etcd3';
import { rescueKeepalives } from '../../../../src/control/etcd/keepalive-rescue.js';
import { waitFor } from '../../../helpers/process.js';

/** What rescueKeepalives uses of a Lease: its events, keepaliveOnce and revoked. */
class StandInLease extends EventEmitter {
  /** The deadline of each keepaliveOnce, in ms after its call. */
  readonly attempts: number[] = [];
  /** Attempts that fail (a hung member's deadline) before one is answered. */
  failing = 0;
  isRevoked = false;

  async keepaliveOnce(options: { deadline: number }): Promise<void> {
    this.attempts.push(options.deadline - Date.now());
    if (this.failing-- > 0) throw new GRPCDeadlineExceededError('4 DEADLINE_EXCEEDED: Deadline exceeded');
  }

  revoked(): boolean {
    return this.isRevoked;
  }
}

const standIn = (): { lease: StandInLease; asLease: Lease } => {
  const lease = new StandInLease();
  return { lease, asLease: lease as unknown as Lease };
};

t.test('an unanswered keepalive: fresh ones until a member answers, each bounded by the wait', async (tt) => {
  const { lease, asLease } = standIn();
  rescueKeepalives(asLease, 5_000, 1_500);
  lease.failing = 2;
  lease.emit('keepaliveFired');
  await waitFor(() => lease.attempts.length === 3, { what: 'three attempts', timeoutMs: 5_000 });
  tt.ok(
    lease.attempts.every((ms) => ms > 400 && ms <= 500),
    `each with the wait (a tenth of the TTL) as deadline: ${lease.attempts.join(', ')} ms`,
  );
  await new Promise((resolve) => setTimeout(resolve, 600));
  tt.equal(lease.attempts.length, 3, 'none after the answered one');
});

t.test('an answered keepalive, or a lease that is gone: nothing sent', async (tt) => {
  const { lease, asLease } = standIn();
  rescueKeepalives(asLease, 5_000, 1_500);
  lease.emit('keepaliveFired');
  lease.emit('keepaliveSucceeded');
  const { lease: gone, asLease: goneLease } = standIn();
  rescueKeepalives(goneLease, 5_000, 1_500);
  gone.emit('keepaliveFired');
  gone.isRevoked = true;
  await new Promise((resolve) => setTimeout(resolve, 800));
  tt.same([lease.attempts, gone.attempts], [[], []]);
});

t.test('the wait: a tenth of the TTL, at least 250 ms, at most the call timeout', async (tt) => {
  for (const [ttlMs, callTimeoutMs, wanted] of [
    [1_000, 1_500, 250],
    [60_000, 1_500, 1_500],
  ] as const) {
    const { lease, asLease } = standIn();
    rescueKeepalives(asLease, ttlMs, callTimeoutMs);
    lease.emit('keepaliveFired');
    await waitFor(() => lease.attempts.length === 1, { what: 'an attempt', timeoutMs: 5_000 });
    tt.ok(Math.abs((lease.attempts[0] ?? 0) - wanted) <= 100, `TTL ${ttlMs} ms, call timeout ${callTimeoutMs} ms: ${lease.attempts[0]} ms, about ${wanted}`);
  }
});
