// Seeded randomness for tests that pick moments and inputs at random: a failing run is repeated
// with ACHERON_TEST_SEED=<the seed it printed>.

/** mulberry32: a small, fast PRNG with a 32-bit seed; numbers in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/** The seed of this run: ACHERON_TEST_SEED when set, else one from the clock. */
export function testSeed(): number {
  return Number(process.env.ACHERON_TEST_SEED ?? Date.now() % 2 ** 31);
}
