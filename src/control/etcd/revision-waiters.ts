/**
 * How far a follower of etcd (a mirror, the catalog) has applied the revision history, and who
 * waits for it to get somewhere: a write waits until its own revision is applied here
 * (read-your-writes), a resume until the revision it names is.
 */
export class RevisionWaiters {
  #revision = 0n;
  #waiters: Array<{ revision: bigint; resolve(reached: boolean): void; timer: NodeJS.Timeout }> = [];
  #closed = false;

  /** Every change up to this revision has been applied. */
  get revision(): bigint {
    return this.#revision;
  }

  /** Everything up to `revision` is applied now: its waiters are told. */
  reached(revision: bigint): void {
    if (revision > this.#revision) this.#revision = revision;
    const reached = this.#waiters.filter((w) => w.revision <= this.#revision);
    if (reached.length === 0) return;
    this.#waiters = this.#waiters.filter((w) => w.revision > this.#revision);
    for (const waiter of reached) {
      clearTimeout(waiter.timer);
      waiter.resolve(true);
    }
  }

  /** Resolves true once `revision` is applied, false after `timeoutMs` (or at close). */
  waitFor(revision: bigint, timeoutMs: number): Promise<boolean> {
    if (this.#revision >= revision) return Promise.resolve(true);
    if (this.#closed) return Promise.resolve(false);
    return new Promise((resolve) => {
      const waiter = {
        revision,
        resolve,
        timer: setTimeout(() => {
          this.#waiters = this.#waiters.filter((w) => w !== waiter);
          resolve(false);
        }, timeoutMs),
      };
      this.#waiters.push(waiter);
    });
  }

  close(): void {
    this.#closed = true;
    for (const waiter of this.#waiters.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.resolve(false);
    }
  }
}
