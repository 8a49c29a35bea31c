import { describe, expect, it } from 'vitest';
import { averagePoolGrid, globalAffinity, gscm, multiplyTransposed } from '../../../src/methods/dense-frequency/gscm.ts';
import { centredLcg } from '../../support/lcg.ts';

describe('multiplyTransposed', () => {
  it('matches a naive product, including ragged block edges', () => {
    const rnd = centredLcg(1);
    const [m, p, n] = [7, 6, 5];
    const a = Float32Array.from({ length: m * n }, rnd);
    const b = Float32Array.from({ length: p * n }, rnd);
    const c = multiplyTransposed(a, m, b, p, n);
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < p; j++) {
        let s = 0;
        for (let k = 0; k < n; k++) s += a[i * n + k] * b[j * n + k];
        expect(c[i * p + j]).toBeCloseTo(s, 5);
      }
    }
  });

  it('symmetric mode equals the full product', () => {
    const rnd = centredLcg(2);
    const [m, n] = [9, 4];
    const a = Float32Array.from({ length: m * n }, rnd);
    expect(Array.from(multiplyTransposed(a, m, a, m, n, undefined, true))).toEqual(Array.from(multiplyTransposed(a, m, a, m, n)));
  });
});

describe('gscm', () => {
  it('has row-stochastic weights', () => {
    const rnd = centredLcg(3);
    const [n, dim] = [13, 6];
    const w = globalAffinity(Float32Array.from({ length: n * dim }, rnd), n, dim, 0.1);
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let j = 0; j < n; j++) {
        expect(w[i * n + j]).toBeGreaterThanOrEqual(0);
        s += w[i * n + j];
      }
      expect(s).toBeCloseTo(1, 6);
    }
  });

  it('maps constant features to the same constant, with or without key pooling', () => {
    const [h, w, dim] = [5, 3, 4];
    const x = new Float32Array(h * w * dim);
    for (let i = 0; i < x.length; i++) x[i] = [0.5, -2, 1, 3][i % dim];
    for (const keyPool of [1, 2]) {
      const out = gscm(x, h, w, dim, { keyPool });
      for (let i = 0; i < x.length; i++) expect(out[i]).toBeCloseTo(x[i], 5);
    }
  });

  it('equals the formula written out', () => {
    const rnd = centredLcg(4);
    const [h, w, dim, tau] = [3, 4, 5, 0.2];
    const n = h * w;
    const x = Float32Array.from({ length: n * dim }, rnd);
    const out = gscm(x, h, w, dim, { tau });
    const norm = (i: number) => Math.hypot(...x.subarray(i * dim, (i + 1) * dim));
    for (let i = 0; i < n; i++) {
      const logits = Array.from({ length: n }, (_, j) => {
        let s = 0;
        for (let c = 0; c < dim; c++) s += x[i * dim + c] * x[j * dim + c];
        return s / (norm(i) * norm(j)) / tau;
      });
      const max = Math.max(...logits);
      const e = logits.map((l) => Math.exp(l - max));
      const total = e.reduce((s, v) => s + v, 0);
      for (let c = 0; c < dim; c++) {
        let v = 0;
        for (let j = 0; j < n; j++) v += (e[j] / total) * x[j * dim + c];
        expect(out[i * dim + c]).toBeCloseTo(v, 5);
      }
    }
  });

  it('pools keys over cells, edge cells included', () => {
    const x = Float32Array.from({ length: 3 * 3 }, (_, i) => i); // 3×3 grid, dim 1
    const { pooled, ph, pw } = averagePoolGrid(x, 3, 3, 1, 2);
    expect([ph, pw]).toEqual([2, 2]);
    expect(Array.from(pooled)).toEqual([(0 + 1 + 3 + 4) / 4, (2 + 5) / 2, (6 + 7) / 2, 8]);
    expect(() => gscm(x, 3, 3, 1, { keyPool: 0 })).toThrow(RangeError);
  });
});
