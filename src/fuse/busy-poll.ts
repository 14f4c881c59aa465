/**
 * Covers the gap between two operations of one client's burst, measured at 60–100 µs on the
 * 2-core machines we run on; longer windows took CPU from the drivers and the client there.
 */
export const DEFAULT_BUSY_POLL_US = 100;
/** A longer window is not a poll any more but a spin: refused. */
export const MAX_BUSY_POLL_US = 10_000;

/** An operation that took longer than this waited for another process (a driver, a relay)... */
const SLOW_OPERATION_NS = 100_000n;
/** ...which still needs a CPU to wind down: no polling for this long after it. */
const QUIET_AFTER_SLOW_NS = 2_000_000n;
/** Weight of the newest gap in the running share of gaps short enough to poll across. */
const SHARE_WEIGHT = 1 / 8;
/** Poll only while at least this share of recent gaps fit in the window. */
const POLL_WHEN_SHARE = 0.25;
/** While not polling, every this many replies poll anyway, to see whether it would pay again. */
const PROBE_EVERY = 4;

/**
 * Keeps the event loop polling, instead of sleeping, for a short window after each reply to the
 * kernel. Every FUSE operation crosses from a libfuse thread to the event loop and back; a loop
 * asleep between two operations of one burst (`cat` is getattr, open, read, read, flush) must be
 * woken for each, and on a virtual machine that wake costs more than handling the operation.
 *
 * It polls only while it pays. After a reply it polled for, the gap to the next operation counts
 * as a hit when it fits in the window; the loop keeps polling while hits are at least a quarter of
 * the recent gaps. (Gaps after a reply it slept on are not counted: they include the wake.) While it
 * does not poll, every 4th reply is polled for anyway, so a new burst turns it back on. A quiet
 * mount costs one window per 4 replies. Nor does it poll for a while after an operation that
 * waited for another process (an invocation): on a small machine the driver, the spawner and the
 * client need the CPUs then, and polling made invocations slower.
 */
export class BusyPoll {
  readonly #windowNs: bigint;
  #hitShare = 1;
  #deadline = 0n;
  #polling = false;
  #lastReply = 0n;
  /** Whether the loop polled after the last reply, so the next gap says whether that paid. */
  #lastReplyPolled = false;
  #quietUntil = 0n;
  #sinceProbe = 0;

  constructor(windowUs: number) {
    if (!Number.isFinite(windowUs) || windowUs < 0 || windowUs > MAX_BUSY_POLL_US) {
      throw new RangeError(`busy-poll window ${windowUs} µs: must be 0 to ${MAX_BUSY_POLL_US}`);
    }
    this.#windowNs = BigInt(Math.round(windowUs)) * 1000n;
  }

  /** Whether replies are followed by polling now (except after slow operations). */
  get active(): boolean {
    return this.#windowNs > 0n && this.#hitShare >= POLL_WHEN_SHARE;
  }

  /** An operation arrived: if the loop polled for it, was it soon enough to be caught? */
  arrived(): void {
    if (!this.#lastReplyPolled) return;
    this.#lastReplyPolled = false;
    const hit = process.hrtime.bigint() - this.#lastReply <= this.#windowNs ? 1 : 0;
    this.#hitShare += (hit - this.#hitShare) * SHARE_WEIGHT;
  }

  /**
   * A reply went to the kernel, `tookNs` after its operation arrived: the next operation of the
   * burst is likely on its way.
   */
  replied(tookNs = 0n): void {
    if (this.#windowNs === 0n) return;
    this.#lastReply = process.hrtime.bigint();
    this.#lastReplyPolled = false;
    if (tookNs > SLOW_OPERATION_NS) this.#quietUntil = this.#lastReply + QUIET_AFTER_SLOW_NS;
    if (this.#lastReply < this.#quietUntil) return;
    if (!this.active && ++this.#sinceProbe < PROBE_EVERY) return;
    this.#sinceProbe = 0;
    this.#lastReplyPolled = true;
    this.#deadline = this.#lastReply + this.#windowNs;
    if (!this.#polling) {
      this.#polling = true;
      this.#poll();
    }
  }

  /**
   * One turn of the loop per call: a pending immediate makes the loop poll for I/O without
   * blocking. It must stay ref'd: for unref'd ones libuv blocks in the poll phase after all.
   */
  #poll = (): void => {
    if (process.hrtime.bigint() < this.#deadline) setImmediate(this.#poll);
    else this.#polling = false;
  };
}
