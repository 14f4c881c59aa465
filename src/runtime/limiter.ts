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
