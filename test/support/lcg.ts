// The tests' one seeded generator: a 32-bit linear congruential generator (Numerical Recipes'
// constants). Small, the same on every machine, and good enough for test data.

/** Uniform numbers in [0, 1) from a 32-bit seed. */
export function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** Uniform numbers in [-0.5, 0.5). */
export function centredLcg(seed: number): () => number {
  const next = lcg(seed);
  return () => next() - 0.5;
}

/** `n` values in [-2, 2): roughly the range of normalised pixels. */
export function seededPixels(n: number, seed: number): Float32Array {
  const next = lcg(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = next() * 4 - 2;
  return out;
}
