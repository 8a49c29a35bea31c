import { describe, expect, it } from 'vitest';
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
