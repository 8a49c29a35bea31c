// The antialiased bicubic resize against hand-computed kernel values and taps, and against
// PyTorch's own output (test/fixtures/torch-resize.json, written by torch-resize.py beside it
// with torch 1.13's F.interpolate(mode='bicubic', antialias=True)).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { cubicKernel, resizeRgbToAffinePlanes, resizeRgbToPlanes, resizeTaps } from '../../src/imaging/resample-bicubic.ts';
import { columnKernel } from '../../src/imaging/resize-kernel.ts';

interface TorchCase {
  width: number;
  height: number;
  outWidth: number;
  outHeight: number;
  planes: number[];
}
const fixture = JSON.parse(readFileSync(new URL('../fixtures/torch-resize.json', import.meta.url), 'utf8')) as { cases: TorchCase[] };

/** The fixture's source image, as torch-resize.py draws it, interleaved. */
function fixtureImage(w: number, h: number): Uint8Array {
  const rgb = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      for (let c = 0; c < 3; c++) rgb[(y * w + x) * 3 + c] = (x * 37 + y * 91 + c * 53 + ((x * y) % 7) * 29) % 256;
  return rgb;
}

describe('cubicKernel (a = −0.5)', () => {
  it('has the hand-computed values', () => {
    expect(cubicKernel(0)).toBe(1);
    // (−0 at 1: the second branch's polynomial is exactly zero there.)
    expect(cubicKernel(1)).toBeCloseTo(0, 15);
    expect(cubicKernel(2)).toBe(0);
    expect(cubicKernel(2.5)).toBe(0);
    expect(cubicKernel(0.5)).toBeCloseTo(0.5625, 12);
    expect(cubicKernel(-0.5)).toBeCloseTo(0.5625, 12);
    expect(cubicKernel(1.5)).toBeCloseTo(-0.0625, 12);
  });
});

describe('resizeTaps', () => {
  it('halving 4 → 2: the kernel stretched twice, clipped at the border and renormalised', () => {
    const t = resizeTaps(4, 2);
    // Output 0: centre 1, support 4 → inputs 0..3 at distances (j − 0.5)/2.
    expect(t.start[0]).toBe(0);
    expect(t.count[0]).toBe(4);
    const raw = [0.8671875, 0.8671875, 0.2265625, -0.0703125];
    const total = raw.reduce((a, b) => a + b);
    for (let j = 0; j < 4; j++) expect(t.weights[j]).toBeCloseTo(raw[j] / total, 12);
    // Output 1 mirrors output 0.
    for (let j = 0; j < 4; j++) expect(t.weights[t.stride + j]).toBeCloseTo(raw[3 - j] / total, 12);
  });

  it('is the identity at equal sizes and sums to 1 everywhere', () => {
    const same = resizeTaps(5, 5);
    for (let i = 0; i < 5; i++) {
      let sum = 0;
      for (let j = 0; j < same.count[i]; j++) {
        const w = same.weights[i * same.stride + j];
        sum += w;
        expect(w).toBeCloseTo(same.start[i] + j === i ? 1 : 0, 12);
      }
      expect(sum).toBeCloseTo(1, 12);
    }
    for (const [a, b] of [[512, 240], [240, 512], [3000, 224], [7, 20]]) {
      const t = resizeTaps(a, b);
      for (let i = 0; i < b; i++) {
        let sum = 0;
        for (let j = 0; j < t.count[i]; j++) sum += t.weights[i * t.stride + j];
        expect(sum).toBeCloseTo(1, 10);
        expect(t.start[i]).toBeGreaterThanOrEqual(0);
        expect(t.start[i] + t.count[i]).toBeLessThanOrEqual(a);
        expect(t.count[i]).toBeLessThanOrEqual(t.stride);
      }
    }
  });

  it('refuses sizes that are not positive integers', () => {
    expect(() => resizeTaps(0, 4)).toThrow(RangeError);
    expect(() => resizeTaps(4, 2.5)).toThrow(RangeError);
  });
});

describe('resizeRgbToPlanes', () => {
  it.each(fixture.cases.map((c) => [`${c.width}×${c.height} → ${c.outWidth}×${c.outHeight}`, c] as const))(
    'matches PyTorch: %s',
    (_name, c) => {
      const out = resizeRgbToPlanes(fixtureImage(c.width, c.height), c.width, c.height, c.outWidth, c.outHeight);
      expect(out.length).toBe(c.planes.length);
      let worst = 0;
      for (let i = 0; i < out.length; i++) worst = Math.max(worst, Math.abs(out[i] - c.planes[i]));
      // In 0..255 units: float32 rounding in PyTorch's passes, and the fixture's 5 decimals (measured: under 1e-4).
      expect(worst).toBeLessThan(5e-4);
    },
  );

  it('keeps a constant image constant and overshoots at sharp edges, as PyTorch does', () => {
    const flat = new Uint8Array(17 * 11 * 3).fill(200);
    for (const v of resizeRgbToPlanes(flat, 17, 11, 6, 9)) expect(v).toBeCloseTo(200, 9);
    // A black/white step enlarged: the cubic rings past 0..255 near the edge; nothing clamps it.
    const step = new Uint8Array(4 * 1 * 3);
    step.fill(255, 6);
    const up = resizeRgbToPlanes(step, 4, 1, 16, 1);
    expect(Math.min(...up)).toBeLessThan(0);
    expect(Math.max(...up)).toBeGreaterThan(255);
  });

  it('refuses a buffer of the wrong length', () => {
    expect(() => resizeRgbToPlanes(new Uint8Array(10), 2, 2, 1, 1)).toThrow(RangeError);
  });
});

describe('resizeRgbToAffinePlanes', () => {
  const scale: [number, number, number] = [1 / (255 * 0.26862954), 1 / (255 * 0.26130258), 1 / (255 * 0.27577711)];
  const shift: [number, number, number] = [0.48145466 / 0.26862954, 0.4578275 / 0.26130258, 0.40821073 / 0.27577711];

  it('has its WebAssembly SIMD kernel on this Node (else the plain JavaScript passes run)', () => {
    expect(columnKernel()).not.toBeNull();
  });

  it.each([
    [1000, 750, 224, 224],
    [1001, 999, 224, 224],
    [333, 517, 224, 224],
    [224, 224, 224, 224],
    [60, 40, 224, 224],
    [17, 11, 6, 9],
    [300, 224, 224, 224], // the height already right: the JavaScript passes (no kernel)
  ])('is resizeRgbToPlanes then v·scale − shift: %i×%i → %i×%i', (w, h, ow, oh) => {
    const rgb = new Uint8Array(w * h * 3);
    for (let i = 0; i < rgb.length; i++) rgb[i] = (Math.imul(i, 2654435761) >>> 24) & 255;
    const planes = resizeRgbToPlanes(rgb, w, h, ow, oh);
    const plane = ow * oh;
    const out = new Float32Array(5 + 3 * plane).fill(Number.NaN);
    resizeRgbToAffinePlanes(rgb, w, h, ow, oh, scale, shift, out, 5);
    let worst = 0;
    for (let i = 0; i < 3 * plane; i++) {
      const c = Math.floor(i / plane);
      worst = Math.max(worst, Math.abs(out[5 + i] - Math.fround(planes[i] * scale[c] - shift[c])));
    }
    // Height first (the kernel) sums in another order than PyTorch's width first: float64
    // rounding apart, at most one float32 step of the result (|values| < 3: 2.4e-7); measured: none.
    expect(worst).toBeLessThanOrEqual(2.5e-7);
    expect(Number.isNaN(out[4])).toBe(true);
  });

  it.each(fixture.cases.map((c) => [`${c.width}×${c.height} → ${c.outWidth}×${c.outHeight}`, c] as const))('matches PyTorch: %s', (_name, c) => {
    const out = new Float32Array(c.planes.length);
    resizeRgbToAffinePlanes(fixtureImage(c.width, c.height), c.width, c.height, c.outWidth, c.outHeight, [1, 1, 1], [0, 0, 0], out);
    let worst = 0;
    for (let i = 0; i < out.length; i++) worst = Math.max(worst, Math.abs(out[i] - c.planes[i]));
    expect(worst).toBeLessThan(5e-4);
  });

  it('refuses an output that is too small', () => {
    expect(() => resizeRgbToAffinePlanes(new Uint8Array(12), 2, 2, 2, 2, [1, 1, 1], [0, 0, 0], new Float32Array(11))).toThrow(RangeError);
  });
});
