import { describe, expect, it } from 'vitest';
import { imageProbability, l2NormalizeRows, patchProbabilities, sigmoid } from '../../src/scoring/similarity.ts';

const unit = (...v: number[]): Float32Array => {
  const n = Math.hypot(...v);
  return Float32Array.from(v, (x) => x / n);
};

describe('patchProbabilities', () => {
  it('equals the two-way softmax of cosines over T', () => {
    const tn = unit(1, 0, 0);
    const ta = unit(0, 1, 0);
    const features = Float32Array.of(2, 1, 0.5, 0, 0, 3, -1, 4, 0);
    const p = patchProbabilities(features, 3, 3, tn, ta, 0.07);
    for (let r = 0; r < 3; r++) {
      const f = features.subarray(r * 3, r * 3 + 3);
      const norm = Math.hypot(f[0], f[1], f[2]);
      const cn = f[0] / norm;
      const ca = f[1] / norm;
      const expected = Math.exp(ca / 0.07) / (Math.exp(cn / 0.07) + Math.exp(ca / 0.07));
      expect(p[r]).toBeCloseTo(expected, 6);
    }
    expect(p[1]).toBeCloseTo(0.5, 6); // orthogonal to both texts
  });

  it('does not depend on the feature scale and gives 0.5 for a zero row', () => {
    const tn = unit(1, 1);
    const ta = unit(1, -1);
    const p = patchProbabilities(Float32Array.of(1, -2, 10, -20, 0, 0), 3, 2, tn, ta);
    expect(p[0]).toBeCloseTo(p[1], 6);
    expect(p[2]).toBe(0.5);
  });

  it('rejects mismatched text and a non-positive temperature', () => {
    expect(() => patchProbabilities(new Float32Array(4), 2, 2, new Float32Array(3), new Float32Array(2))).toThrow(RangeError);
    expect(() => patchProbabilities(new Float32Array(4), 2, 2, unit(1, 0), unit(0, 1), 0)).toThrow(RangeError);
  });
});

describe('helpers', () => {
  it('imageProbability matches one patch', () => {
    const tn = unit(1, 0);
    const ta = unit(0, 1);
    expect(imageProbability(Float32Array.of(0.2, 0.9), tn, ta, 0.01)).toBeCloseTo(sigmoid((0.9 - 0.2) / Math.hypot(0.2, 0.9) / 0.01), 6);
  });

  it('sigmoid is stable at extremes', () => {
    expect(sigmoid(1000)).toBe(1);
    expect(sigmoid(-1000)).toBe(0);
    expect(sigmoid(0)).toBe(0.5);
  });

  it('l2NormalizeRows keeps zero rows at zero', () => {
    const out = l2NormalizeRows(Float32Array.of(3, 4, 0, 0), 2, 2);
    expect(Array.from(out)).toEqual([0.6000000238418579, 0.800000011920929, 0, 0]);
  });
});
