import { describe, expect, it } from 'vitest';
import { layerBranchMaps, uniformBranchText } from '../../../src/methods/dense-frequency/branches.ts';
import { fsam } from '../../../src/methods/dense-frequency/fsam.ts';
import { centredLcg } from '../../support/lcg.ts';

function unitVector(dim: number, rnd: () => number): Float32Array {
  const v = Float32Array.from({ length: dim }, rnd);
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
}

describe('fsam', () => {
  it('flags a planted outlier in a smooth field as the top patch of the high branch', () => {
    const [h, w, dim] = [10, 12, 48];
    const rnd = centredLcg(11);
    const base = unitVector(dim, rnd);
    const gx = unitVector(dim, rnd);
    const gy = unitVector(dim, rnd);
    const outlier = unitVector(dim, rnd);
    const x = new Float32Array(h * w * dim);
    for (let y = 0; y < h; y++) {
      for (let xx = 0; xx < w; xx++) {
        const row = (y * w + xx) * dim;
        // A smooth, slowly varying field: a base vector plus gentle gradients and small noise.
        for (let c = 0; c < dim; c++) {
          x[row + c] = 2 * base[c] + 0.3 * Math.sin((Math.PI * xx) / w) * gx[c] + 0.3 * Math.cos((Math.PI * y) / h) * gy[c] + 0.02 * rnd();
        }
      }
    }
    const planted = 4 * w + 7;
    for (let c = 0; c < dim; c++) x[planted * dim + c] += 1.5 * outlier[c];

    const text = uniformBranchText({ normal: base, abnormal: outlier });
    const maps = layerBranchMaps(x, h, w, dim, text);
    const high = maps.high!;
    let best = 0;
    for (let i = 1; i < high.length; i++) if (high[i] > high[best]) best = i;
    expect(best).toBe(planted);
    expect(high[planted]).toBeGreaterThan(0.99);
  });

  it('is the identity with beta = 0 and leaves a uniform field unchanged', () => {
    const [h, w, dim] = [4, 5, 3];
    const rnd = centredLcg(5);
    const x = Float32Array.from({ length: h * w * dim }, rnd);
    expect(Array.from(fsam(x, h, w, dim, { beta: 0 }))).toEqual(Array.from(x));
    const flat = new Float32Array(h * w * dim).fill(0.25);
    const out = fsam(flat, h, w, dim, { beta: 1 });
    for (const v of out) expect(v).toBeCloseTo(0.25, 6);
  });

  it('adds beta times the contrast with the similarity-weighted neighbours', () => {
    // 1×2 grid: each patch has exactly one neighbour, so its weight is 1.
    const x = Float32Array.of(1, 0, 0, 1);
    const out = fsam(x, 1, 2, 2, { beta: 0.5 });
    expect(Array.from(out)).toEqual([1.5, -0.5, -0.5, 1.5]);
    // With itself included the weights are softmax([1, 0] / tau) over self and neighbour.
    const tau = 0.5;
    const self = Math.exp(1 / tau) / (Math.exp(1 / tau) + 1);
    const withSelf = fsam(x, 1, 2, 2, { beta: 1, tau, includeSelf: true });
    expect(withSelf[0]).toBeCloseTo(2 - self, 6);
    expect(withSelf[1]).toBeCloseTo(-(1 - self), 6);
  });

  it('rejects an even window and a bad tau', () => {
    const x = new Float32Array(4);
    expect(() => fsam(x, 2, 2, 1, { k: 2 })).toThrow(RangeError);
    expect(() => fsam(x, 2, 2, 1, { tau: 0 })).toThrow(RangeError);
  });
});
