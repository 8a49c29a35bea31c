import { describe, expect, it } from 'vitest';
import { defaultFusionWeights, fuseMaps, imageScore, topKMean } from '../../../src/methods/dense-frequency/fusion.ts';

const full = Float32Array.of(0.1, 0.7, 0.33333334, 0.9);
const high = Float32Array.of(0.5, 0.2, 0.8, NaN);
const low = Float32Array.of(0.3, 0.3, 0.3, 0.3);

describe('fuseMaps', () => {
  it('weights (1, 0, 0) reproduce the full map exactly', () => {
    expect(Array.from(fuseMaps({ full, high, low }, { full: 1, high: 0, low: 0 }))).toEqual(Array.from(full));
    expect(Array.from(fuseMaps({ full }, { full: 2.5, high: 0, low: 0 }))).toEqual(Array.from(full));
  });

  it('normalises by the sum of the weights', () => {
    const h = Float32Array.of(0.5, 0.2, 0.8, 0.4);
    const fused = fuseMaps({ full, high: h, low }, { full: 2, high: 1, low: 1 });
    for (let i = 0; i < 4; i++) expect(fused[i]).toBeCloseTo((2 * full[i] + h[i] + low[i]) / 4, 6);
    const byDefault = fuseMaps({ full, high: h, low });
    const { full: a, high: b, low: c } = defaultFusionWeights;
    expect(a + b + c).toBeCloseTo(1, 12);
    for (let i = 0; i < 4; i++) expect(byDefault[i]).toBeCloseTo(a * full[i] + b * h[i] + c * low[i], 6);
  });

  it('rejects missing maps, negative or all-zero weights', () => {
    expect(() => fuseMaps({ full }, { full: 1, high: 1, low: 0 })).toThrow(RangeError);
    expect(() => fuseMaps({ full, high, low }, { full: 1, high: -1, low: 0 })).toThrow(RangeError);
    expect(() => fuseMaps({ full, high, low }, { full: 0, high: 0, low: 0 })).toThrow(RangeError);
  });
});

describe('imageScore', () => {
  it('averages the top-k% of the map, at least one value', () => {
    const map = Float32Array.from({ length: 200 }, (_, i) => i / 1000); // max 0.199, next 0.198
    expect(topKMean(map, 1)).toBeCloseTo((0.199 + 0.198) / 2, 6);
    expect(topKMean(map, 0.1)).toBeCloseTo(0.199, 6);
    expect(topKMean(map, 100)).toBeCloseTo(0.0995, 6);
    expect(topKMean(Float32Array.of(0.4, 0.9, 0.1), 1)).toBeCloseTo(0.9, 6);
  });

  it('mixes the image probability and the map statistic with alpha', () => {
    const map = Float32Array.of(0.2, 0.8, 0.4, 0.6);
    expect(imageScore(0.5, map, { alpha: 0.5, topKPercent: 50 })).toBeCloseTo(0.5 * 0.5 + 0.5 * 0.7, 6);
    expect(imageScore(0.5, map)).toBeCloseTo(0.5 * 0.5 + 0.5 * 0.8, 6);
    expect(imageScore(0.3, map, { alpha: 1 })).toBe(0.3);
    expect(imageScore(0.3, map, { alpha: 0, topKPercent: 25 })).toBeCloseTo(0.8, 6);
    expect(() => imageScore(0.3, map, { alpha: 2 })).toThrow(RangeError);
    expect(() => imageScore(0.3, map, { topKPercent: 0 })).toThrow(RangeError);
  });
});
