/** The last `capacity` durations, for p50/p90/p99 in metrics.json. */
export class LatencyWindow {
  #samples: number[] = [];
  #capacity: number;

  constructor(capacity = 1024) {
    this.#capacity = capacity;
  }

  add(ms: number): void {
    this.#samples.push(ms);
    if (this.#samples.length > this.#capacity) this.#samples.shift();
  }

  /** The samples, oldest first: journaled so metrics.json survives a restart exactly. */
  samples(): number[] {
    return [...this.#samples];
  }

  restore(samples: readonly number[]): void {
    this.#samples = samples.slice(-this.#capacity);
  }

  percentiles(): { p50: number | null; p90: number | null; p99: number | null } {
    if (this.#samples.length === 0) return { p50: null, p90: null, p99: null };
    const sorted = [...this.#samples].sort((a, b) => a - b);
    const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] as number;
    return { p50: at(0.5), p90: at(0.9), p99: at(0.99) };
  }
}
