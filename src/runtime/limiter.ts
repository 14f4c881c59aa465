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

  /** `onStart` runs when the job leaves the queue, before `job`. */
  async schedule<T>(job: () => Promise<T>): Promise<T> {
    if (this.#running >= this.#concurrency) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    else this.#running++;
    try {
      return await job();
    } finally {
      const next = this.#waiting.shift();
      if (next) next(); // the slot passes straight to the next job
      else this.#running--;
    }
  }
}
