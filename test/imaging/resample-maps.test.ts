import { describe, expect, it } from 'vitest';
import { gaussianBlur, gaussianKernel, reflectIndex, upsampleAndBlur, upsampleBilinear } from '../../src/imaging/resample-maps.ts';

describe('upsampleBilinear', () => {
  it('matches torch interpolate(bilinear, align_corners=False) for 2×2 → 4×4', () => {
    const out = upsampleBilinear(Float32Array.of(0, 1, 2, 3), 2, 2, 4, 4);
    expect(Array.from(out)).toEqual([
      0, 0.25, 0.75, 1,
      0.5, 0.75, 1.25, 1.5,
      1.5, 1.75, 2.25, 2.5,
      2, 2.25, 2.75, 3,
    ]);
  });

  it('handles non-square output and downsampling', () => {
    const out = upsampleBilinear(Float32Array.of(0, 1, 2, 3), 2, 2, 2, 1);
    // One output row sits at source y = 0.5: the mean of the two rows.
    expect(Array.from(out)).toEqual([1, 2]);
    expect(Array.from(upsampleBilinear(Float32Array.of(1, 3), 1, 2, 1, 1))).toEqual([2]);
  });
});

describe('gaussianBlur', () => {
  it('keeps a constant map (and its sum)', () => {
    const [w, h] = [9, 6];
    const out = gaussianBlur(new Float32Array(w * h).fill(0.7), w, h, 2);
    let s = 0;
    for (const v of out) {
      expect(v).toBeCloseTo(0.7, 6);
      s += v;
    }
    expect(s).toBeCloseTo(0.7 * w * h, 4);
  });

  it('spreads a delta symmetrically and keeps its mass', () => {
    const [w, h] = [21, 21];
    const map = new Float32Array(w * h);
    const c = 10;
    map[c * w + c] = 1;
    const out = gaussianBlur(map, w, h, 1.5);
    let s = 0;
    for (const v of out) s += v;
    expect(s).toBeCloseTo(1, 6);
    for (let d = 1; d <= 4; d++) {
      expect(out[c * w + c + d]).toBeCloseTo(out[c * w + c - d], 7);
      expect(out[(c + d) * w + c]).toBeCloseTo(out[(c - d) * w + c], 7);
      expect(out[(c + d) * w + c]).toBeCloseTo(out[c * w + c + d], 7);
      expect(out[c * w + c + d]).toBeLessThan(out[c * w + c + d - 1]);
    }
    const k = gaussianKernel(1.5);
    expect(k.length).toBe(2 * Math.ceil(4.5) + 1);
    expect(out[c * w + c]).toBeCloseTo(k[(k.length - 1) / 2] ** 2, 7);
  });

  it('reflects at the border even when the kernel is wider than the map', () => {
    expect([-3, -2, -1, 0, 1, 2, 3, 4, 5, 6].map((i) => reflectIndex(i, 3))).toEqual([2, 1, 0, 0, 1, 2, 2, 1, 0, 0]);
    const map = Float32Array.of(1, 0, 0, 0);
    const out = gaussianBlur(map, 4, 1, 10);
    expect(out.reduce((s, v) => s + v, 0)).toBeCloseTo(1, 6);
    expect(Array.from(gaussianBlur(map, 4, 1, 0))).toEqual(Array.from(map));
  });
});

describe('upsampleAndBlur', () => {
  it('equals gaussianBlur(upsampleBilinear(grid))', () => {
    let seed = 7;
    const grid = Float32Array.from({ length: 5 * 4 }, () => {
      seed = (seed * 16807) % 2147483647;
      return seed / 2147483647;
    });
    for (const [outW, outH, sigma] of [
      [37, 23, 3],
      [11, 40, 25],
      [4, 5, 0],
    ]) {
      const fused = upsampleAndBlur(grid, 5, 4, outW, outH, sigma);
      const reference = gaussianBlur(upsampleBilinear(grid, 5, 4, outW, outH), outW, outH, sigma);
      expect(fused.length).toBe(outW * outH);
      for (let i = 0; i < fused.length; i++) expect(Math.abs(fused[i] - reference[i])).toBeLessThan(1e-6);
    }
  });
});
