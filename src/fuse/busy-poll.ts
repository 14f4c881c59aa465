/**
 * Covers the gap between two operations of one client's burst, measured at 60–100 µs on the
 * 2-core machines we run on; longer windows took CPU from the drivers and the client there.
 */
export const DEFAULT_BUSY_POLL_US = 100;

/** An operation that took longer than this waited for another process (a driver, a relay)... */
const SLOW_OPERATION_NS = 200_000n;
/** ...which still needs a CPU to wind down: no polling for this long after it. */
const QUIET_AFTER_SLOW_NS = 2_000_000n;

/** Weight of the newest gap in the running share of gaps short enough to poll across. */
const SHARE_WEIGHT = 1 / 8;
/** Poll only while at least this share of recent gaps fit in the window. */
const POLL_WHEN_SHARE = 0.5;

/**
 * Keeps the event loop polling, instead of sleeping, for a short window after each reply to the
 * kernel. Every FUSE operation crosses from a libfuse thread to the event loop and back; a loop
 * asleep between two operations of one burst (`cat` is getattr, open, read, read, flush) must be
 * woken for each, and on a virtual machine that wake costs more than handling the operation.
 *
 * It polls only while it pays: each operation's gap since the previous reply counts as a hit when
 * it fits in the window, and the loop polls while hits are at least half of the recent gaps. A
 * quiet mount, or one whose clients pause between operations, stops polling and costs no CPU. Nor
 * does it poll for a while after an operation that waited for another process (an invocation):
 * on a small machine the driver, the spawner and the client need the CPUs then, and polling
 * made invocations slower.
 */
export class BusyPoll {
  readonly #windowNs: bigint;
  #hitShare = 1;
  #deadline = 0n;
  #polling = false;
  #lastReply = 0n;
  #quietUntil = 0n;

  constructor(windowUs: number) {
    this.#windowNs = BigInt(Math.max(0, Math.round(windowUs))) * 1000n;
  }

  /** Whether replies are followed by polling now. */
  get active(): boolean {
    return this.#windowNs > 0n && this.#hitShare >= POLL_WHEN_SHARE;
  }

  /** An operation arrived: was it soon enough after the last reply to have been polled for? */
  arrived(): void {
    if (this.#windowNs === 0n || this.#lastReply === 0n) return;
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
    if (tookNs > SLOW_OPERATION_NS) this.#quietUntil = this.#lastReply + QUIET_AFTER_SLOW_NS;
    if (!this.active || this.#lastReply < this.#quietUntil) return;
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
