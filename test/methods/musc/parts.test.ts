// The smaller pieces of MuSc: minimum batch, pair ownership, default layers, LayerNorm, RsCIN,
// the align_corners upsampling behind the image score, and input checks.
import { describe, expect, it } from 'vitest';
import { defaultMuscLayers, MUSC_LAYERS_12, MUSC_LAYERS_24, validateMuscFeatures } from '../../../src/methods/musc/features.ts';
import { upsampleAlignCorners, upsampledMax } from '../../../src/methods/musc/aggregate.ts';
import { layerNormImage, lnamd } from '../../../src/methods/musc/lnamd.ts';
import { assertEnoughImages, MUSC_MIN_IMAGES, MuscInputError, MuscTooFewImagesError, topMinCount } from '../../../src/methods/musc/min-images.ts';
import { ownedPartners } from '../../../src/methods/musc/msm.ts';
import { scoreMusc } from '../../../src/methods/musc/musc.ts';
import { RSCIN_K_VISA, rscin } from '../../../src/methods/musc/rscin.ts';
import { centredLcg } from '../../support/lcg.ts';
import { randomBatch } from '../../support/musc-batch.ts';
import { referenceRscin } from '../../support/reference-musc.ts';

describe('minimum batch', () => {
  it('k = int((N − 1)·0.3) as in _MSM.py, so N ≥ 5', () => {
    for (let n = 2; n <= 500; n++) expect(topMinCount(n)).toBe(Math.floor((3 * (n - 1)) / 10));
    expect(topMinCount(4)).toBe(0);
    expect(topMinCount(5)).toBe(1);
    expect(MUSC_MIN_IMAGES).toBe(5);
  });

  it('throws a typed error naming the minimum below 5 images', () => {
    for (const n of [0, 1, 4]) {
      expect(() => assertEnoughImages(n)).toThrow(MuscTooFewImagesError);
      expect(() => scoreMusc(randomBatch({ images: Math.max(1, n), layers: 1, h: 3, w: 3, width: 4 }, 1), { imageSize: 6 })).toThrow(/at least 5 images/);
    }
    try {
      assertEnoughImages(4);
    } catch (err) {
      expect(err).toBeInstanceOf(MuscInputError);
      expect(err).toMatchObject({ code: 'musc_too_few_images', minimum: 5, received: 4 });
    }
    expect(() => assertEnoughImages(5)).not.toThrow();
    expect(scoreMusc(randomBatch({ images: 5, layers: 1, h: 3, w: 3, width: 4 }, 1), { imageSize: 6 }).scores).toHaveLength(5);
  });
});

describe('pair ownership', () => {
  it('covers every unordered pair exactly once, half the ring per image', () => {
    for (let n = 2; n <= 13; n++) {
      const seen = new Map<string, number>();
      for (let i = 0; i < n; i++) {
        const partners = ownedPartners(n, i);
        expect(partners.length).toBeGreaterThanOrEqual(Math.floor((n - 1) / 2));
        expect(partners.length).toBeLessThanOrEqual(Math.ceil((n - 1) / 2));
        for (const j of partners) {
          const key = `${Math.min(i, j)},${Math.max(i, j)}`;
          seen.set(key, (seen.get(key) ?? 0) + 1);
        }
      }
      expect(seen.size).toBe((n * (n - 1)) / 2);
      expect([...seen.values()].every((v) => v === 1)).toBe(true);
    }
  });
});

describe('default layers', () => {
  it('follows the authors: 3,6,9,12 of 12 (--feature_layers 2 5 8 11) and 6,12,18,24 of 24', () => {
    expect(defaultMuscLayers(12)).toEqual([...MUSC_LAYERS_12]);
    expect(defaultMuscLayers(12)).toEqual([3, 6, 9, 12]);
    expect(defaultMuscLayers(24)).toEqual([6, 12, 18, 24]);
    expect(defaultMuscLayers(24)).toEqual([...MUSC_LAYERS_24]);
    expect(defaultMuscLayers(32)).toEqual([8, 16, 24, 32]);
    expect(() => defaultMuscLayers(3)).toThrow(MuscInputError);
  });
});

describe('LNAMD', () => {
  it('LayerNorm has one mean and variance over the whole [C, h, w] map', () => {
    const next = centredLcg(3);
    const x = Float32Array.from({ length: 20 * 6 }, () => 3 + 2 * next());
    const y = layerNormImage(x);
    const mean = y.reduce((a, b) => a + b, 0) / y.length;
    const variance = y.reduce((a, b) => a + (b - mean) ** 2, 0) / y.length;
    expect(Math.abs(mean)).toBeLessThan(1e-6);
    expect(variance).toBeCloseTo(1, 4);
    // Per-patch means are NOT zero: it is not a per-token LayerNorm.
    const patchMean = y.subarray(0, 6).reduce((a, b) => a + b, 0) / 6;
    expect(Math.abs(patchMean)).toBeGreaterThan(1e-3);
  });

  it('r = 1 is normalisation only; r = 3 at a corner averages 4 real and 5 zero-padded patches', () => {
    const grid = { h: 3, w: 3 };
    const x = Float32Array.from({ length: 9 * 2 }, (_, k) => (k % 2 === 0 ? k : -k / 3));
    const normed = layerNormImage(x);
    const z1 = lnamd(x, grid, 2, 1);
    const n0 = Math.hypot(normed[0], normed[1]);
    expect(z1[0]).toBeCloseTo(normed[0] / n0, 6);
    const z3 = lnamd(x, grid, 2, 3);
    const corner = [0, 1, 3, 4].map((p) => [normed[2 * p], normed[2 * p + 1]]);
    const sum = [corner.reduce((a, v) => a + v[0], 0), corner.reduce((a, v) => a + v[1], 0)];
    expect(z3[0]).toBeCloseTo(sum[0] / Math.hypot(sum[0], sum[1]), 6);
    expect(() => lnamd(x, grid, 2, 2)).toThrow(MuscInputError);
  });
});

describe('RsCIN', () => {
  const next = centredLcg(11);
  const n = 12;
  const dim = 10;
  const scores = Array.from({ length: n }, () => next() + 0.5);
  const embeds = Float32Array.from({ length: n * dim }, next);
  const nestedEmbeds = Array.from({ length: n }, (_, i) => Array.from(embeds.subarray(i * dim, (i + 1) * dim)));

  it('matches MMO() for the MVTec and VisA k lists', () => {
    for (const k of [[1, 2, 3], [...RSCIN_K_VISA], [2, 5]]) {
      const got = rscin(scores, embeds, dim, k);
      const want = referenceRscin(scores, nestedEmbeds, k);
      got.forEach((v, i) => expect(v).toBeCloseTo(want[i], 12));
    }
  });

  it('k = 1 alone is the min–max normalised score; a 0 or no embeddings switches it off', () => {
    const lo = Math.min(...scores);
    const hi = Math.max(...scores);
    rscin(scores, embeds, dim, [1]).forEach((v, i) => expect(v).toBeCloseTo((scores[i] - lo) / (hi - lo), 12));
    expect(Array.from(rscin(scores, embeds, dim, [0]))).toEqual(scores);
    expect(Array.from(rscin(scores, undefined, dim))).toEqual(scores);
  });

  it('averages with the most similar images: two near-duplicates pull each other', () => {
    const e = new Float32Array([1, 0, 0.99, 0.14, 0, 1, 0.1, 0.99, -1, 0.1]);
    const s = [1, 0, 0.5, 0.5, 0.2];
    const out = rscin(s, e, 2, [1, 2]);
    // Image 0's nearest other image is 1: (1 + (W01·0 + 1·1)/(1 + W01)) / 2 with W01 = cos.
    const w01 = Math.fround(0.99) / Math.hypot(Math.fround(0.99), Math.fround(0.14));
    expect(out[0]).toBeCloseTo((1 + 1 / (1 + w01)) / 2, 12);
    expect(() => rscin(s, e, 3)).toThrow(MuscInputError);
  });

  it('clamps k to N and gives 0 for a batch of equal scores', () => {
    expect(Array.from(rscin([0.3, 0.3, 0.3, 0.3, 0.3], embeds.subarray(0, 5 * dim), dim, [1, 9]))).toEqual([0, 0, 0, 0, 0]);
  });
});

describe('image score: max of the align_corners=True upsample', () => {
  it('hits the grid corners exactly and interpolates between grid points', () => {
    const grid = { h: 2, w: 3 };
    const map = [0, 1, 2, 3, 4, 5];
    const up = upsampleAlignCorners(map, grid, 3, 5);
    expect(Array.from(up)).toEqual([0, 0.5, 1, 1.5, 2, 1.5, 2, 2.5, 3, 3.5, 3, 3.5, 4, 4.5, 5]);
  });

  it('is below the grid maximum when the peak is an interior point the samples miss', () => {
    const grid = { h: 14, w: 14 };
    const map = new Array<number>(196).fill(0);
    map[5 * 14 + 7] = 1;
    const score = upsampledMax(map, grid, 224);
    expect(score).toBeLessThan(1);
    expect(score).toBeGreaterThan(0.9);
    // Sample o sits at o·13/223 on the grid; the peak's weight is the best tent value per axis.
    const bestWeight = (at: number) => Math.max(...Array.from({ length: 224 }, (_, o) => Math.max(0, 1 - Math.abs((o * 13) / 223 - at))));
    expect(score).toBeCloseTo(bestWeight(5) * bestWeight(7), 12);
  });
});

describe('input checks', () => {
  it('rejects buffers that do not match their shape, and non-finite tokens', () => {
    const f = randomBatch({ images: 5, layers: 2, h: 3, w: 3, width: 4 }, 1);
    expect(() => validateMuscFeatures({ ...f, layers: 3 })).toThrow(/expected images·layers·h·w·width/);
    expect(() => validateMuscFeatures({ ...f, embedDim: 7 })).toThrow(MuscInputError);
    const bad = Float32Array.from(f.tokens);
    bad[17] = Number.NaN;
    expect(() => validateMuscFeatures({ ...f, tokens: bad })).toThrow(/not finite/);
    expect(() => scoreMusc(f, { imageSize: 0 })).toThrow(MuscInputError);
    expect(() => scoreMusc(f, { imageSize: 6, degrees: [4] })).toThrow(MuscInputError);
  });
});
