// Metrics against hand-computed values (working in the comments) and against brute force.
import { describe, expect, it } from 'vitest';
import {
  aupro,
  auroc,
  averagePrecision,
  connectedComponents,
  f1Max,
  pixelAuroc,
  pixelAveragePrecision,
  pixelRankingMetrics,
  radixSortUint32,
  rankingMetrics,
} from '../../src/eval/metrics.ts';
import { lcg } from '../support/lcg.ts';

/** O(P·N) Mann-Whitney: the definition of AUROC with ties counted 1/2. */
function bruteForceAuroc(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  let sum = 0;
  let pairs = 0;
  for (let i = 0; i < scores.length; i++) {
    if (!labels[i]) continue;
    for (let j = 0; j < scores.length; j++) {
      if (labels[j]) continue;
      pairs++;
      sum += scores[i] > scores[j] ? 1 : scores[i] === scores[j] ? 0.5 : 0;
    }
  }
  return sum / pairs;
}

describe('auroc', () => {
  it('counts ties as one half', () => {
    // positives {0.4, 0.8}, negatives {0.1, 0.4}: 0.4>0.1 (1) + 0.4=0.4 (1/2) + 0.8>both (2) = 3.5 of 4.
    expect(auroc([0.1, 0.4, 0.4, 0.8], [0, 0, 1, 1])).toBe(0.875);
    expect(auroc([0.5, 0.5, 0.5], [1, 0, 1])).toBe(0.5);
  });

  it('perfect, inverted, single class', () => {
    expect(auroc([0.1, 0.2, 0.3, 0.9], [0, 0, 1, 1])).toBe(1);
    expect(auroc([0.9, 0.8, 0.3, 0.1], [0, 0, 1, 1])).toBe(0);
    expect(auroc([0.1, 0.2], [1, 1])).toBeNaN();
    expect(auroc([0.1, 0.2], [0, 0])).toBeNaN();
    expect(auroc([0.1, 0.2], [false, true])).toBe(1);
  });

  it('matches brute force on random tied scores, float64 and float32 paths alike', () => {
    const rand = lcg(3);
    const n = 500;
    const scores = Array.from({ length: n }, () => Math.round(rand() * 20) / 20 - 0.5); // many ties, negatives, ±0
    const labels = Array.from({ length: n }, () => (rand() < 0.3 ? 1 : 0));
    const expected = bruteForceAuroc(scores, labels);
    expect(auroc(scores, labels)).toBeCloseTo(expected, 14);
    const f32 = Float32Array.from(scores);
    expect(auroc(f32, Uint8Array.from(labels))).toBeCloseTo(bruteForceAuroc(f32, labels), 14);
  });

  it('treats -0 and +0 as one score', () => {
    expect(auroc(new Float32Array([-0, 0]), new Uint8Array([1, 0]))).toBe(0.5);
    expect(auroc([-0, 0], [1, 0])).toBe(0.5);
  });

  it('rejects NaN scores', () => {
    expect(() => auroc([0.1, NaN], [0, 1])).toThrow(/NaN/);
    expect(() => auroc(new Float32Array([0.1, NaN]), [0, 1])).toThrow(/NaN/);
  });
});

describe('averagePrecision', () => {
  it('matches the sklearn docstring example', () => {
    // Descending: 0.8 (+) P=1 R=1/2; 0.4 (-) R unchanged; 0.35 (+) P=2/3 R=1; 0.1 (-).
    // AP = 1/2·1 + 1/2·2/3 = 5/6.
    expect(averagePrecision([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])).toBeCloseTo(5 / 6, 15);
  });

  it('groups ties into one threshold', () => {
    // Groups: 0.8 {+} → TP1 FP0, R=1/3 P=1; 0.5 {+,-,-} → TP2 FP2, R=2/3 P=1/2;
    // 0.2 {+} → TP3 FP2, R=1 P=3/5. AP = 1/3 + 1/3·1/2 + 1/3·3/5 = 0.7.
    // (Ranking the tied + first would give 1/3 + 1/3 + 1/3·3/5 = 0.8667, the optimistic value.)
    expect(averagePrecision([0.8, 0.5, 0.5, 0.5, 0.2], [1, 0, 1, 0, 1])).toBeCloseTo(0.7, 15);
  });

  it('is 1 for a perfect ranking, NaN without positives', () => {
    expect(averagePrecision([0.1, 0.2, 0.9], [0, 1, 1])).toBe(1);
    expect(averagePrecision([0.1, 0.2], [0, 0])).toBeNaN();
  });
});

describe('f1Max', () => {
  it('finds the best threshold', () => {
    // F1 = 2TP / (TP + FP + P), P = 2: t=0.8: 2/3; t=0.4: 2/4; t=0.35: 4/5; t=0.1: 4/6.
    const { f1, threshold } = f1Max([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]);
    expect(f1).toBeCloseTo(0.8, 15);
    expect(threshold).toBe(0.35);
  });

  it('returns the threshold as the float32 score on the typed-array path', () => {
    const { f1, threshold } = f1Max(new Float32Array([0.1, 0.4, 0.35, 0.8]), new Uint8Array([0, 0, 1, 1]));
    expect(f1).toBeCloseTo(0.8, 15);
    expect(threshold).toBe(Math.fround(0.35));
  });

  it('is NaN without positives', () => {
    expect(f1Max([0.3], [0]).f1).toBeNaN();
  });
});

describe('pixel metrics', () => {
  it('give the same numbers from per-image chunks, a concatenation and the float64 path', () => {
    const rand = lcg(11);
    const maps = Array.from({ length: 4 }, () => Float32Array.from({ length: 300 }, () => Math.round(rand() * 50) / 50));
    const masks = maps.map((m) => Uint8Array.from(m, (v) => (v + rand() * 0.5 > 0.8 ? 255 : 0)));
    const allScores = new Float32Array(1200);
    const allLabels = new Uint8Array(1200);
    maps.forEach((m, i) => allScores.set(m, i * 300));
    masks.forEach((m, i) => allLabels.set(m, i * 300));
    const chunked = pixelRankingMetrics(maps, masks);
    const whole = pixelRankingMetrics(allScores, allLabels);
    const reference = rankingMetrics(Array.from(allScores), Array.from(allLabels));
    expect(chunked).toEqual(whole);
    expect(whole.auroc).toBe(reference.auroc);
    expect(whole.averagePrecision).toBe(reference.averagePrecision);
    expect(whole.f1Max).toBe(reference.f1Max);
    expect(pixelAuroc(allScores, allLabels)).toBeCloseTo(bruteForceAuroc(allScores, allLabels), 14);
    expect(pixelAveragePrecision(maps, masks)).toBe(whole.averagePrecision);
  });

  it('radix sort orders keys and carries the payload', () => {
    const rand = lcg(5);
    const keys = Uint32Array.from({ length: 5000 }, () => (rand() * 2 ** 32) >>> 0);
    keys[7] = keys[8]; // a tie
    const payload = Uint32Array.from(keys, (k) => k ^ 0x5a5a5a5a);
    radixSortUint32(keys, new Uint32Array(5000), payload, new Uint32Array(5000));
    expect(Array.from(keys)).toEqual(Array.from(keys).sort((a, b) => a - b));
    expect(Array.from(payload)).toEqual(Array.from(keys, (k) => (k ^ 0x5a5a5a5a) >>> 0));
  });
});

describe('connectedComponents', () => {
  it('joins diagonal neighbours (8-connectivity) and labels in raster order', () => {
    // 1 0 0 1
    // 0 1 0 1
    // 0 0 0 0
    // 1 1 0 1
    const mask = Uint8Array.from([1, 0, 0, 1, 0, 1, 0, 1, 0, 0, 0, 0, 1, 1, 0, 1]);
    const { labels, count } = connectedComponents(mask, 4, 4);
    expect(count).toBe(4);
    expect(Array.from(labels)).toEqual([1, 0, 0, 2, 0, 1, 0, 2, 0, 0, 0, 0, 3, 3, 0, 4]);
  });

  it('merges branches met later in raster order (a V shape)', () => {
    // 1 0 1
    // 0 1 0
    const { labels, count } = connectedComponents(Uint8Array.from([1, 0, 1, 0, 1, 0]), 3, 2);
    expect(count).toBe(1);
    expect(Array.from(labels)).toEqual([1, 0, 1, 0, 1, 0]);
  });

  it('handles a large blob without recursion', () => {
    const { count, labels } = connectedComponents(new Uint8Array(1000 * 1000).fill(1), 1000, 1000);
    expect(count).toBe(1);
    expect(labels[999_999]).toBe(1);
  });
});

describe('aupro', () => {
  // Image 1, 3x3, mask       scores
  //   1 0 0                  0.9  0.8  0.45
  //   0 1 0                  0.3  0.5  0.2
  //   0 0 0                  0.1  0.1  0.1
  // one component c1 = {0.9, 0.5} joined diagonally (size 2).
  // Image 2, 5x1, mask 1 0 0 0 1, scores 0.7 0.6 0.45 0.05 0.45: c2 = {0.7}, c3 = {0.45}.
  // Normal pixels (10): 0.8, 0.6, 0.45, 0.45, 0.3, 0.2, 0.1, 0.1, 0.1, 0.05.
  // Distinct thresholds from the top (FPR, PRO = mean of the three overlap fractions):
  //   0.9 : (0,   (1/2 + 0 + 0)/3 = 1/6)
  //   0.8 : (0.1, 1/6)
  //   0.7 : (0.1, (1/2 + 1 + 0)/3 = 1/2)
  //   0.6 : (0.2, 1/2)
  //   0.5 : (0.2, (1 + 1 + 0)/3 = 2/3)
  //   0.45: (0.4, 1)            two normals and c3 tie at 0.45: FPR jumps over 0.3
  // Trapezoids from (0, 0): 0 + 0.1·1/6 + 0 + 0.1·1/2 + 0, then up to FPR 0.3 with PRO
  // interpolated at 0.3: 2/3 + (1 - 2/3)·(0.1/0.2) = 5/6, area 0.1·(2/3 + 5/6)/2 = 0.075.
  // Total 1/60 + 1/20 + 3/40 = 17/120; divided by 0.3: 17/36 = 0.47222...
  // (Stopping at the last point ≤ 0.3 instead would give (1/60 + 1/20)/0.3 = 2/9.)
  const maps = [new Float32Array([0.9, 0.8, 0.45, 0.3, 0.5, 0.2, 0.1, 0.1, 0.1]), new Float32Array([0.7, 0.6, 0.45, 0.05, 0.45])];
  const masks = [Uint8Array.from([1, 0, 0, 0, 1, 0, 0, 0, 0]), Uint8Array.from([255, 0, 0, 0, 255])];
  const sizes = [
    { width: 3, height: 3 },
    { width: 5, height: 1 },
  ];

  it('interpolates PRO at exactly FPR 0.3 across images and components', () => {
    expect(aupro(maps, masks, sizes)).toBeCloseTo(17 / 36, 12);
  });

  // One 4x2 image, mask   scores
  //   1 1 0 0             1     0.5  0.75 0
  //   0 0 0 1             0.25  0.5  0    0.25
  // c1 = {1, 0.5} (size 2), c2 = {0.25}; normals 0.75, 0.5, 0.25, 0, 0.
  // Exact points: 1: (0, 1/4); 0.75: (0.2, 1/4); 0.5: (0.4, 1/2); 0.25: (0.6, 1); 0: (1, 1).
  const grid = [new Float32Array([1, 0.5, 0.75, 0, 0.25, 0.5, 0, 0.25])];
  const gridMask = [Uint8Array.from([1, 1, 0, 0, 0, 0, 0, 1])];
  const gridSize = { width: 4, height: 2 };

  it('integrates the whole curve with fprLimit 1', () => {
    // 0.2·1/4 + 0.2·(1/4 + 1/2)/2 + 0.2·(1/2 + 1)/2 + 0.4·1 = 0.05 + 0.075 + 0.15 + 0.4 = 0.675
    expect(aupro(grid, gridMask, gridSize, { fprLimit: 1 })).toBeCloseTo(0.675, 12);
  });

  it('binned thresholds: exact when they hit every score, coarser otherwise', () => {
    // @0.3: 0.2·1/4 = 0.05, PRO(0.3) = 3/8, 0.1·(1/4 + 3/8)/2 = 0.03125 → 0.08125/0.3 = 13/48.
    expect(aupro(grid, gridMask, gridSize)).toBeCloseTo(13 / 48, 12);
    expect(aupro(grid, gridMask, gridSize, { thresholds: 5 })).toBeCloseTo(13 / 48, 12); // 1, .75, .5, .25, 0
    // Thresholds 1, 0.5, 0: points (0, 1/4), (0.4, 1/2), (1, 1); PRO(0.3) = 1/4 + 1/4·0.75 = 7/16,
    // area 0.3·(1/4 + 7/16)/2 = 0.103125 → /0.3 = 11/32.
    expect(aupro(grid, gridMask, gridSize, { thresholds: 3 })).toBeCloseTo(11 / 32, 12);
  });

  it('is 1 for a perfect map, 0 for an inverted one, NaN without defects', () => {
    const mask = [Uint8Array.from([0, 1, 1, 0, 0, 0, 1, 0, 0])];
    const perfect = [Float32Array.from(mask[0], (v) => (v ? 0.9 : 0.1))];
    const inverted = [Float32Array.from(mask[0], (v) => (v ? 0.1 : 0.9))];
    const size = { width: 3, height: 3 };
    expect(aupro(perfect, mask, size)).toBeCloseTo(1, 12);
    expect(aupro(inverted, mask, size)).toBe(0);
    expect(aupro(perfect, [new Uint8Array(9)], size)).toBeNaN();
  });

  it('checks its inputs', () => {
    expect(() => aupro(maps, masks, { width: 3, height: 3 })).toThrow(/image 1/);
    expect(() => aupro(maps, masks, sizes, { fprLimit: 0 })).toThrow(/fprLimit/);
  });
});
