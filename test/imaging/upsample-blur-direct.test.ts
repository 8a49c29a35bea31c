// Map post-processing of long thin images: the composed upsample+blur table by prefix sums
// (upsample-blur-direct.ts) equals the composed one, normal images keep the composed path
// bit for bit, and a 16384×2 strip costs no more than a 1000×1000 image.
import { describe, expect, it } from 'vitest';
import { directAxis, gaussianKernel, resizeAndBlur, upsampleBlurTaps, bilinearTaps, gaussianTaps } from '../../src/imaging/resample-maps.ts';
import { upsampleBlurTapsDirect } from '../../src/imaging/upsample-blur-direct.ts';
import { composeTaps, denseMatrix, resample2d } from '../../src/imaging/taps.ts';
import { plane } from '../../src/imaging/plane.ts';
import { uniformBranchText } from '../../src/methods/dense-frequency/branches.ts';
import { defaultScoringSettings, scoreImage } from '../../src/methods/dense-frequency/pipeline.ts';
import { findRegions } from '../../src/scoring/regions.ts';
import { centredLcg } from '../support/lcg.ts';

describe('upsampleBlurTapsDirect', () => {
  it.each([
    [14, 300, 20],
    [14, 2, 50], // kernel far wider than the axis: many reflections
    [14, 2, 292.6],
    [37, 1000, 3],
    [14, 5, 0.5],
    [7, 40, 30],
    [1, 9, 4],
    [14, 2000, 35],
  ])('equals the composed table for %i → %i, sigma %f', (n, m, sigma) => {
    const composed = denseMatrix(composeTaps(gaussianTaps(m, sigma), bilinearTaps(n, m)));
    const direct = denseMatrix(upsampleBlurTapsDirect(n, m, gaussianKernel(sigma)));
    expect(direct.length).toBe(composed.length);
    for (let i = 0; i < composed.length; i++) expect(Math.abs(direct[i] - composed[i])).toBeLessThan(1e-11); // prefix-sum differences over kernels of up to ~1800 taps
  });
});

describe('resizeAndBlur on extreme aspect ratios', () => {
  const sigmaFor = (w: number, h: number) => (4 * Math.max(w, h)) / 224;

  it('keeps the composed tables (bit-identical results) for photos and camera frames', () => {
    for (const [w, h] of [[1000, 1000], [4000, 3000], [640, 480], [8192, 1000], [1000, 8192], [37, 23]]) {
      const s = sigmaFor(w, h);
      expect(directAxis(w, s, w * h)).toBe(false);
      expect(directAxis(h, s, w * h)).toBe(false);
    }
    const rnd = centredLcg(5);
    const grid = Float32Array.from({ length: 14 * 14 }, rnd);
    const s = sigmaFor(320, 240);
    const composedX = composeTaps(gaussianTaps(320, s), bilinearTaps(14, 320));
    const composedY = composeTaps(gaussianTaps(240, s), bilinearTaps(14, 240));
    const expected = resample2d(grid, composedX, composedY);
    expect(resizeAndBlur(plane(14, 14, grid), 320, 240, s).data).toEqual(expected);
  });

  it('takes the direct table for the long axis of a strip', () => {
    const s = sigmaFor(16384, 2);
    expect(directAxis(16384, s, 16384 * 2)).toBe(true);
    expect(directAxis(2, s, 16384 * 2)).toBe(false);
    expect(upsampleBlurTaps(14, 16384, s, true).stride).toBeLessThanOrEqual(6);
  });

  it('scores a 16384×2 image (upsample, blur, regions) in under 3× the time of a 1000×1000 one', () => {
    const rnd = centredLcg(21);
    const [layers, g, dim] = [1, 14, 16];
    const unit = () => {
      const v = Float32Array.from({ length: dim }, rnd);
      const n = Math.hypot(...v);
      return v.map((x) => x / n);
    };
    const base = {
      imageEmbed: Float32Array.from({ length: dim }, rnd),
      dense: Float32Array.from({ length: layers * g * g * dim }, rnd),
      layers,
      gridH: g,
      gridW: g,
      dim,
      text: uniformBranchText({ normal: unit(), abnormal: unit() }),
      inputSize: 224,
      settings: defaultScoringSettings,
    };
    const post = (width: number, height: number) => {
      const t = performance.now();
      const { map } = scoreImage({ ...base, width, height });
      findRegions(map, width, height, 0.5);
      return performance.now() - t;
    };
    // Both warmed first (the first calls compile the shared loops, which favoured whichever ran
    // second), then interleaved, each size distinct so no run reuses another's cached tables;
    // the medians compared. Before: the strip's table alone took ~20× the square's whole
    // post-processing. Now the two cost about the same (the square's column pass runs in
    // WebAssembly; the strip's cost is its 16384-entry tables), so the bound is 3×.
    post(16000, 2);
    post(990, 990);
    const strip: number[] = [];
    const square: number[] = [];
    for (let i = 0; i < 5; i++) {
      strip.push(post(16384 - i, 2));
      square.push(post(1000 - i, 1000 - i));
    }
    const median = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1];
    expect(median(strip)).toBeLessThan(3 * median(square));
  });
});
