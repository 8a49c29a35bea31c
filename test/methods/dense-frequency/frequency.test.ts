import { describe, expect, it } from 'vitest';
import { lowPassMatrix, signedNyquistFraction, splitFrequency } from '../../../src/methods/dense-frequency/frequency.ts';
import { centredLcg } from '../../support/lcg.ts';

/** Straight from the definition: per channel 2-D DFT, Gaussian mask, inverse DFT, real part. */
function naiveLowPass(x: Float32Array, h: number, w: number, dim: number, cutoff: number): Float64Array {
  const out = new Float64Array(h * w * dim);
  for (let c = 0; c < dim; c++) {
    const re = new Float64Array(h * w);
    const im = new Float64Array(h * w);
    for (let u = 0; u < h; u++) {
      for (let v = 0; v < w; v++) {
        let sr = 0;
        let si = 0;
        for (let y = 0; y < h; y++) {
          for (let xx = 0; xx < w; xx++) {
            const phase = -2 * Math.PI * ((u * y) / h + (v * xx) / w);
            const val = x[(y * w + xx) * dim + c];
            sr += val * Math.cos(phase);
            si += val * Math.sin(phase);
          }
        }
        const fu = signedNyquistFraction(u, h);
        const fv = signedNyquistFraction(v, w);
        const g = Math.exp(-(fu * fu + fv * fv) / (2 * cutoff * cutoff));
        re[u * w + v] = sr * g;
        im[u * w + v] = si * g;
      }
    }
    for (let y = 0; y < h; y++) {
      for (let xx = 0; xx < w; xx++) {
        let s = 0;
        for (let u = 0; u < h; u++) {
          for (let v = 0; v < w; v++) {
            const phase = 2 * Math.PI * ((u * y) / h + (v * xx) / w);
            s += re[u * w + v] * Math.cos(phase) - im[u * w + v] * Math.sin(phase);
          }
        }
        out[(y * w + xx) * dim + c] = s / (h * w);
      }
    }
  }
  return out;
}

function randomGrid(h: number, w: number, dim: number, seed: number): Float32Array {
  const rnd = centredLcg(seed);
  return Float32Array.from({ length: h * w * dim }, rnd);
}

describe('splitFrequency', () => {
  it('low + high reconstructs X', () => {
    const [h, w, dim] = [7, 9, 5];
    const x = randomGrid(h, w, dim, 3);
    const { low, high } = splitFrequency(x, h, w, dim, 0.3);
    for (let i = 0; i < x.length; i++) expect(Math.abs(low[i] + high[i] - x[i])).toBeLessThan(1e-6);
  });

  it.each([
    [6, 8, 0.25],
    [5, 7, 0.25],
    [4, 4, 0.5],
    [1, 6, 0.2],
  ])('matches a naive 2-D DFT on a %ix%i grid (cutoff %f)', (h, w, cutoff) => {
    const dim = 3;
    const x = randomGrid(h, w, dim, h * 31 + w);
    const { low } = splitFrequency(x, h, w, dim, cutoff);
    const expected = naiveLowPass(x, h, w, dim, cutoff);
    for (let i = 0; i < x.length; i++) expect(Math.abs(low[i] - expected[i])).toBeLessThan(1e-6);
  });

  it('puts a constant grid entirely in the low part', () => {
    const [h, w, dim] = [6, 5, 4];
    const x = new Float32Array(h * w * dim);
    for (let i = 0; i < x.length; i++) x[i] = [0.3, -1.2, 2, 0.7][i % dim];
    const { low, high } = splitFrequency(x, h, w, dim);
    for (let i = 0; i < x.length; i++) {
      expect(Math.abs(high[i])).toBeLessThan(1e-6);
      expect(low[i]).toBeCloseTo(x[i], 6);
    }
  });

  it('puts a checkerboard mostly in the high part', () => {
    const [h, w, dim] = [8, 8, 3];
    const x = new Float32Array(h * w * dim);
    for (let y = 0; y < h; y++) for (let xx = 0; xx < w; xx++) for (let c = 0; c < dim; c++) x[(y * w + xx) * dim + c] = ((y + xx) % 2 ? 1 : -1) * (c + 1);
    const { low, high } = splitFrequency(x, h, w, dim);
    let ex = 0;
    let eh = 0;
    let el = 0;
    for (let i = 0; i < x.length; i++) {
      ex += x[i] * x[i];
      eh += high[i] * high[i];
      el += low[i] * low[i];
    }
    expect(eh / ex).toBeGreaterThan(0.99);
    expect(el / ex).toBeLessThan(1e-6);
  });

  it('builds a real symmetric filter matrix whose rows sum to 1 (DC gain)', () => {
    for (const n of [1, 5, 8]) {
      const a = lowPassMatrix(n, 0.25);
      for (let r = 0; r < n; r++) {
        let s = 0;
        for (let c = 0; c < n; c++) {
          s += a[r * n + c];
          expect(a[r * n + c]).toBeCloseTo(a[c * n + r], 12);
        }
        expect(s).toBeCloseTo(1, 12);
      }
    }
    expect(signedNyquistFraction(4, 8)).toBe(-1);
    expect(signedNyquistFraction(3, 8)).toBe(0.75);
  });

  it('writes into provided buffers and rejects bad input', () => {
    const x = randomGrid(3, 3, 2, 9);
    const low = new Float32Array(18);
    const high = new Float32Array(18);
    const out = splitFrequency(x, 3, 3, 2, 0.25, { low, high });
    expect(out.low).toBe(low);
    expect(out.high).toBe(high);
    expect(() => splitFrequency(x, 3, 3, 2, 0)).toThrow(RangeError);
    expect(() => splitFrequency(x, 4, 3, 2)).toThrow(RangeError);
  });
});
