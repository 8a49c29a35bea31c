// The colour scale's WebAssembly kernels against colormap.ts's scaleIndex in JavaScript: the same
// entry for every float32 (edges, NaN, infinities, the rounding midpoints of every entry), over
// more than one slab and a tail that is not a multiple of four.
import { describe, expect, it } from 'vitest';
import { colourKernel, entryRangeOf, paletteIndicesOf, rgbPixelsOf } from '../../src/imaging/colour-kernel.ts';
import { SCALE_STEPS, scaleIndex, scaleTable } from '../../src/imaging/colormap.ts';
import { lcg } from '../support/lcg.ts';

function values(): Float32Array {
  const random = lcg(17);
  // 300 003 values: more than one slab of 2^18, and three left over for JavaScript.
  const v = Float32Array.from({ length: 300_003 }, () => random() * 1.4 - 0.2);
  const edges = [NaN, -0, 0, 1, 1.0000001, -Infinity, Infinity, 0.5 / 4095, 0.99999994, 1e-45, -1e-45, 2, -3];
  v.set(edges);
  // Every entry's rounding midpoint, as a float32 just below, at and just above it.
  for (let k = 0; k < SCALE_STEPS; k++) {
    const mid = Math.fround((k + 0.5) / (SCALE_STEPS - 1));
    v.set([mid, Math.fround(mid * (1 - 2 ** -23)), Math.fround(mid * (1 + 2 ** -23))], 100 + 3 * k);
  }
  return v;
}

describe('colour-scale kernels', () => {
  it('exist on this Node (else the same passes run in JavaScript)', () => {
    expect(colourKernel()).not.toBeNull();
  });

  const v = values();
  const expected = Int32Array.from(v, (x) => scaleIndex(x));

  it('give every value the entry scaleIndex gives it, as a palette index', () => {
    const table = Uint8Array.from({ length: SCALE_STEPS }, (_, k) => (k * 7 + (k >> 8)) & 0xff);
    const out = new Uint8Array(v.length);
    paletteIndicesOf(v, table, out);
    let wrong = 0;
    for (let i = 0; i < v.length; i++) if (out[i] !== table[expected[i]]) wrong++;
    expect(wrong).toBe(0);
  });

  it('and as RGB bytes of the scale table', () => {
    const { rgb } = scaleTable(0.37);
    const out = new Uint8Array(3 * v.length);
    rgbPixelsOf(v, rgb, out);
    let wrong = 0;
    for (let i = 0; i < v.length; i++) for (let c = 0; c < 3; c++) if (out[3 * i + c] !== rgb[3 * expected[i] + c]) wrong++;
    expect(wrong).toBe(0);
  });

  it('find the least and greatest entry', () => {
    expect(entryRangeOf(v)).toEqual([0, SCALE_STEPS - 1]);
    const narrow = Float32Array.from({ length: 1001 }, (_, i) => 0.3 + 0.1 * Math.sin(i));
    expect(entryRangeOf(narrow)).toEqual([Math.min(...Array.from(narrow, scaleIndex)), Math.max(...Array.from(narrow, scaleIndex))]);
    expect(entryRangeOf(new Float32Array([0.5, 0.25]))).toEqual([scaleIndex(0.25), scaleIndex(0.5)]); // the JavaScript tail alone
  });
});
