// Order statistics for the benchmark samples (microseconds).

function ranked(sorted, q) {
  if (sorted.length === 0) return NaN;
  if (q === 0.5 && sorted.length % 2 === 0) return (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

const sortedCopy = (values) => Float64Array.from(values).sort();

/** Nearest-rank percentile, q in (0, 1]; the median of an even count is the mean of the middle two. */
export function percentile(values, q) {
  return ranked(sortedCopy(values), q);
}

/** n, median, p90, p99 and min; one sort, so it also suits samples in the hundreds of thousands. */
export function summarize(values) {
  const sorted = sortedCopy(values);
  return {
    n: sorted.length,
    median: ranked(sorted, 0.5),
    p90: ranked(sorted, 0.9),
    p99: ranked(sorted, 0.99),
    min: sorted.length === 0 ? Infinity : sorted[0],
  };
}
