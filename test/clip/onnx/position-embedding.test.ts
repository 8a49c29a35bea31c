import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { resizePositionEmbedding } from '../../../src/clip/onnx/position-embedding.ts';
import { resizePositionEmbedding as referenceResize } from '../../support/reference-clip.ts';

function grid(g: number, width: number, seed: number) {
  const data = new Float32Array((1 + g * g) * width);
  let s = seed;
  for (let i = 0; i < data.length; i++) {
    s = (s * 16807) % 2147483647;
    data[i] = s / 2147483647 - 0.5;
  }
  return { shape: [1 + g * g, width], data };
}

describe('resizePositionEmbedding', () => {
  it('keeps the grid unchanged at the same size', () => {
    const pos = grid(7, 5, 3);
    expect(resizePositionEmbedding(pos, 7, 7)).toEqual(pos.data);
  });

  it('gives PyTorch bicubic (a = -0.75, half-pixel, clamped taps) values for a 2→4 ramp', () => {
    // One channel holding the grid [[0, 1], [0, 1]]; see reference-clip.test.ts for the hand computation.
    const pos = { shape: [5, 1], data: new Float32Array([9, 0, 1, 0, 1]) };
    const out = resizePositionEmbedding(pos, 2, 4);
    expect(out[0]).toBe(9); // class row untouched
    const row = Array.from(out.subarray(1, 5));
    [-0.10546875, 0.2265625, 0.7734375, 1.10546875].forEach((v, i) => expect(row[i]).toBeCloseTo(v, 6));
  });

  it.each([
    [14, 16],
    [15, 24],
    [16, 14],
    [7, 3],
  ])('agrees with the reference resize from %i to %i', (g0, g) => {
    const pos = grid(g0, 6, g0 * 31 + g);
    const ours = resizePositionEmbedding(pos, g0, g);
    const ref = referenceResize(pos, g0, g);
    for (let i = 0; i < ref.length; i++) expect(Math.abs(ours[i] - ref[i])).toBeLessThan(1e-6);
  });

  it('refuses a table whose rows do not match the grid', () => {
    expect(() => resizePositionEmbedding(grid(4, 2, 1), 5, 6)).toThrow(/rows/);
  });
});

describe('resizePositionEmbedding, open_clip layout (antialiased bicubic)', () => {
  it('equals PyTorch F.interpolate(bicubic, antialias=True) on the 40×40 → 15×15 fixture', () => {
    const torch = JSON.parse(readFileSync(join(import.meta.dirname, '../../fixtures/torch-resize.json'), 'utf8')) as {
      cases: Array<{ width: number; height: number; outWidth: number; outHeight: number; planes: number[] }>;
    };
    const c = torch.cases.find((k) => k.width === 40 && k.height === 40 && k.outWidth === 15)!;
    // The fixture's image (torch-resize.py), as a 3-channel position grid after a class row.
    const g0 = 40;
    const pos = { shape: [1 + g0 * g0, 3], data: new Float32Array((1 + g0 * g0) * 3) };
    pos.data.set([7, 8, 9]);
    for (let y = 0; y < g0; y++) for (let x = 0; x < g0; x++) for (let ch = 0; ch < 3; ch++) {
      pos.data[3 + (y * g0 + x) * 3 + ch] = (x * 37 + y * 91 + ch * 53 + ((x * y) % 7) * 29) % 256;
    }
    const out = resizePositionEmbedding(pos, g0, 15, 'open_clip');
    expect(Array.from(out.subarray(0, 3))).toEqual([7, 8, 9]);
    for (let ch = 0; ch < 3; ch++) for (let i = 0; i < 15 * 15; i++) {
      expect(Math.abs(out[3 + i * 3 + ch] - c.planes[ch * 225 + i])).toBeLessThan(2e-3);
    }
  });

  it('differs from the HF (no antialias) resize when downsizing, and keeps the native size unchanged', () => {
    const pos = grid(16, 4, 5);
    const hf = resizePositionEmbedding(pos, 16, 7, 'hf');
    const oc = resizePositionEmbedding(pos, 16, 7, 'open_clip');
    let maxDiff = 0;
    for (let i = 4; i < hf.length; i++) maxDiff = Math.max(maxDiff, Math.abs(hf[i] - oc[i]));
    expect(maxDiff).toBeGreaterThan(0.05);
    expect(resizePositionEmbedding(pos, 16, 16, 'open_clip')).toEqual(pos.data);
  });
});
