/**
 * What `promise` settles to, or `fallback` when `ms` pass first. The timer goes with the race: one left
 * behind holds the test process up to `ms` after its last test (a 60 s one held a unit shard that long).
 */
export async function settledWithin<T, F>(promise: Promise<T>, ms: number, fallback: F): Promise<T | F> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<F>((resolve) => (timer = setTimeout(() => resolve(fallback), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
