/** Runs at most `concurrency` jobs at once; the rest wait in arrival order (ws's limiter). */
export class Limiter {
  #concurrency: number;
  #running = 0;
  #waiting: Array<() => void> = [];

  constructor(concurrency: number) {
    this.#concurrency = concurrency;
  }

  get running(): number {
    return this.#running;
  }

  get queued(): number {
    return this.#waiting.length;
  }

  /**
   * The longest a job scheduled now can wait for its place when every job ahead takes at most
   * `eachMs`: one such wait per full round of `concurrency` ahead of it (0: a slot is free).
   */
  waitBoundMs(eachMs: number): number {
    const ahead = this.#running + this.#waiting.length;
    return Math.max(0, Math.ceil((ahead + 1) / this.#concurrency) - 1) * eachMs;
  }

  /** A reload may change max_concurrency: more slots start waiting jobs at once, fewer drain. */
  setConcurrency(concurrency: number): void {
    this.#concurrency = concurrency;
    while (this.#running < this.#concurrency && this.#waiting.length > 0) {
      this.#running++;
      this.#waiting.shift()?.();
    }
  }

  /** Runs `job` once a slot is free; slots are handed over in arrival order. */
  async schedule<T>(job: () => Promise<T>): Promise<T> {
    if (this.#running >= this.#concurrency) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    else this.#running++;
    try {
      return await job();
    } finally {
      const next = this.#running <= this.#concurrency ? this.#waiting.shift() : undefined;
      if (next)
        next(); // the slot passes straight to the next job
      else this.#running--;
    }
  }
}
