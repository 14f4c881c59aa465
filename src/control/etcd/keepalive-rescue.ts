import { EtcdLeaseInvalidError, type Lease } from 'etcd3';

/** Pause after a rescue attempt refused at once (every member's breaker open, say): no busy loop. */
const REFUSED_PAUSE_MS = 50;
/** Shortest wait for a keepalive's answer: a loaded machine answers within it; fewer needless rescues. */
const MIN_WAIT_MS = 250;

/**
 * Keeps a lease alive past a keepalive stream that hangs. etcd3 sends a lease's keepalives on one
 * stream, to one member, and takes the stream for broken only after a whole TTL without an answer,
 * when etcd has expired the lease already: a member that hung (SIGSTOP) under the stream cost this
 * server its registration (and /readyz a 503) with quorum intact. A keepalive not answered within
 * the wait (a tenth of the TTL, within [250 ms, `callTimeoutMs`]) is sent again on a fresh stream,
 * with that deadline, one after another (a member that fails three times is skipped by its
 * breaker), until a member answers or the TTL has passed (etcd3 then says `lost` itself). It ends
 * with the lease (released, revoked or lost).
 */
export function rescueKeepalives(lease: Lease, ttlMs: number, callTimeoutMs: number): void {
  const waitMs = Math.min(callTimeoutMs, Math.max(MIN_WAIT_MS, ttlMs / 10));
  let answeredMs = Date.now();
  let timer: NodeJS.Timeout | undefined;
  let rescuing = false;
  /** Whether the stream answered since the keepalive the timer waits on was sent. */
  let answered = true;
  const rescue = async (): Promise<void> => {
    rescuing = true;
    try {
      while (!lease.revoked() && Date.now() < answeredMs + ttlMs) {
        const startedMs = Date.now();
        try {
          await lease.keepaliveOnce({ deadline: startedMs + waitMs });
          answeredMs = Date.now();
          return;
        } catch (error) {
          // etcd says the lease is gone: etcd3 has emitted `lost`.
          if (error instanceof EtcdLeaseInvalidError) return;
          if (Date.now() - startedMs < REFUSED_PAUSE_MS) await new Promise((resolve) => setTimeout(resolve, REFUSED_PAUSE_MS));
        }
      }
    } finally {
      rescuing = false;
    }
  };
  lease.on('keepaliveFired', () => {
    if (timer !== undefined || rescuing) return;
    answered = false;
    timer = setTimeout(() => {
      timer = undefined;
      if (!answered && !lease.revoked()) void rescue();
    }, waitMs);
  });
  lease.on('keepaliveSucceeded', () => {
    answered = true;
    answeredMs = Date.now();
  });
}
