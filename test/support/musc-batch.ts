// Random MuSc batches for the tests, and their nested-array form for reference-musc.ts.
import type { MuscFeatures } from '../../src/methods/musc/features.ts';
import { centredLcg } from './lcg.ts';

export interface BatchShape {
  images: number;
  layers: number;
  h: number;
  w: number;
  width: number;
  embedDim?: number;
}

/** Tokens and embeddings uniform in [-0.5, 0.5) from a seed. */
export function randomBatch(shape: BatchShape, seed: number): MuscFeatures {
  const next = centredLcg(seed);
  const { images, layers, h, w, width } = shape;
  const tokens = Float32Array.from({ length: images * layers * h * w * width }, next);
  const embedDim = shape.embedDim ?? 8;
  const imageEmbeds = Float32Array.from({ length: images * embedDim }, next);
  return { tokens, images, layers, grid: { h, w }, width, imageEmbeds, embedDim };
}

/** tokens[i][l][p][c] and embeds[i][c] as plain numbers. */
export function nested(f: MuscFeatures): { tokens: number[][][][]; embeds: number[][] | undefined } {
  const L = f.grid.h * f.grid.w;
  const tokens = Array.from({ length: f.images }, (_, i) =>
    Array.from({ length: f.layers }, (_, l) =>
      Array.from({ length: L }, (_, p) => {
        const o = ((i * f.layers + l) * L + p) * f.width;
        return Array.from(f.tokens.subarray(o, o + f.width));
      }),
    ),
  );
  const d = f.embedDim ?? 0;
  const embeds = f.imageEmbeds ? Array.from({ length: f.images }, (_, i) => Array.from(f.imageEmbeds!.subarray(i * d, (i + 1) * d))) : undefined;
  return { tokens, embeds };
}

/** The batch with its images in the order `order` (new image t = old image order[t]). */
export function permuteBatch(f: MuscFeatures, order: number[]): MuscFeatures {
  const per = f.layers * f.grid.h * f.grid.w * f.width;
  const tokens = new Float32Array(f.tokens.length);
  order.forEach((old, t) => tokens.set(f.tokens.subarray(old * per, (old + 1) * per), t * per));
  const d = f.embedDim ?? 0;
  const imageEmbeds = f.imageEmbeds ? new Float32Array(f.imageEmbeds.length) : undefined;
  if (imageEmbeds) order.forEach((old, t) => imageEmbeds.set(f.imageEmbeds!.subarray(old * d, (old + 1) * d), t * d));
  return { ...f, tokens, imageEmbeds };
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
