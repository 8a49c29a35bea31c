// Seeded randomness: one small PRNG (mulberry32) for everything that must give the same numbers
// for a seed on every machine and Node version — training's validation split and batch order,
// and the weights of generated development models (src/dev/random-model.ts).

/** mulberry32: successive 32-bit outputs (as unsigned integers) of the state seeded with `seed`. */
export function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** Uniform numbers in [0, 1) from a 32-bit seed. */
export function seededRandom(seed: number): () => number {
  const next = mulberry32(seed);
  return () => next() / 2 ** 32;
}

/** Uniform numbers in (0, 1), never 0 (for log() in Box-Muller), from the same generator. */
export function seededOpenUnit(seed: number): () => number {
  const next = mulberry32(seed);
  return () => (next() + 0.5) / 2 ** 32;
}

/** Fisher–Yates shuffle of a copy. */
export function shuffled<T>(items: readonly T[], random: () => number): T[] {
  const out = items.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}
