import type { LatencyPercentiles } from '../protocol/types.gen.js';

/** 256 samples: enough for a p99, small enough to journal with every outcome. */
export const LATENCY_SAMPLES = 256;

/** Appends a duration to `samples` (oldest first, in place), keeping the last `capacity`. */
export function addLatency(samples: number[], ms: number, capacity = LATENCY_SAMPLES): void {
  samples.push(ms);
  if (samples.length > capacity) samples.splice(0, samples.length - capacity);
}

/** p50/p90/p99 of `samples` for metrics.json. */
export function latencyPercentiles(samples: readonly number[]): LatencyPercentiles {
  if (samples.length === 0) return { p50: null, p90: null, p99: null };
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] as number;
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99) };
}
