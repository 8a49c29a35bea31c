// The shared separable resampler: tables compose and transpose as matrices do, the passes
// agree with the dense matrices, and every kernel gives bit-for-bit what it gave before the
// kernels shared this code (hashes recorded from the separate implementations they replaced).
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { composeTaps, denseMatrix, isIdentity, resample2d, tapsFrom, transposeTaps } from '../../src/imaging/taps.ts';
import { resizeRgbToPlanes } from '../../src/imaging/resample-bicubic.ts';
import { bilinearTaps, gaussianBlur, gaussianTaps, upsampleAndBlur, upsampleBilinear, upsampleBlurTaps } from '../../src/imaging/resample-maps.ts';
import { nearestTaps, resizeNearest } from '../../src/imaging/resample-nearest.ts';
import { upsampleBilinearTranspose } from '../../src/training/upsample-transpose.ts';

function lcg(seed: number): () => number {
  return () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed / 2 ** 32;
  };
}

/** Dense m × n times n × k. */
function matmul(a: Float64Array, b: Float64Array, m: number, n: number, k: number): Float64Array {
  const out = new Float64Array(m * k);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) for (let l = 0; l < k; l++) out[i * k + l] += a[i * n + j] * b[j * k + l];
  return out;
}

describe('tap tables', () => {
  it('compose like their matrices: G·U', () => {
    const u = bilinearTaps(5, 23);
    const g = gaussianTaps(23, 2);
    const composed = denseMatrix(composeTaps(g, u));
    const product = matmul(denseMatrix(g), denseMatrix(u), 23, 23, 5);
    for (let i = 0; i < product.length; i++) expect(composed[i]).toBeCloseTo(product[i], 12);
    expect(() => composeTaps(g, bilinearTaps(5, 22))).toThrow(RangeError);
  });

  it('transpose like their matrices, and resample2d of a transpose is the adjoint', () => {
    const t = bilinearTaps(6, 17);
    const tt = transposeTaps(t);
    expect([tt.inSize, tt.outSize]).toEqual([17, 6]);
    const d = denseMatrix(t);
    const dt = denseMatrix(tt);
    for (let o = 0; o < 17; o++) for (let i = 0; i < 6; i++) expect(dt[i * 17 + o]).toBe(d[o * 6 + i]);
  });

  it('know the identity, and resample2d skips it', () => {
    expect(isIdentity(bilinearTaps(9, 9))).toBe(true);
    expect(isIdentity(gaussianTaps(9, 0))).toBe(true);
    expect(isIdentity(bilinearTaps(9, 10))).toBe(false);
    const src = Float32Array.of(1, 2, 3, 4, 5, 6);
    const same = tapsFrom(3, 3, 1, (o, add) => add(o, 1));
    expect(Array.from(resample2d(src, same, tapsFrom(2, 2, 1, (o, add) => add(o, 1))))).toEqual([1, 2, 3, 4, 5, 6]);
    expect(() => tapsFrom(3, 3, 1, (_o, add) => (add(0, 1), add(1, 1)))).toThrow(RangeError);
  });

  it('apply rows then columns, per channel, interleaved or as planes', () => {
    const random = lcg(3);
    const [w, h, c] = [7, 5, 3];
    const src = Float32Array.from({ length: w * h * c }, random);
    const tx = bilinearTaps(w, 11);
    const ty = gaussianTaps(h, 1.2);
    const interleaved = resample2d(src, tx, ty, { channels: c });
    const planes = resample2d(src, tx, ty, { channels: c, planar: true });
    const dx = denseMatrix(tx);
    const dy = denseMatrix(ty);
    for (let ch = 0; ch < c; ch++) {
      const channel = Float64Array.from({ length: w * h }, (_, i) => src[i * c + ch]);
      // Ty · X · Txᵀ
      const txT = new Float64Array(w * 11);
      for (let o = 0; o < 11; o++) for (let i = 0; i < w; i++) txT[i * 11 + o] = dx[o * w + i];
      const expected = matmul(matmul(dy, channel, h, h, w), txT, h, w, 11);
      for (let i = 0; i < expected.length; i++) {
        expect(interleaved[i * c + ch]).toBeCloseTo(expected[i], 5);
        expect(planes[ch * expected.length + i]).toBe(interleaved[i * c + ch]);
      }
    }
  });

  it('nearest: the input pixel under each output centre, values unchanged', () => {
    const t = nearestTaps(10, 4);
    expect(Array.from(t.indices)).toEqual([1, 3, 6, 8]);
    expect(Array.from(nearestTaps(3, 7).indices)).toEqual([0, 0, 1, 1, 1, 2, 2]);
    const src = Uint8Array.of(0, 255, 10, 20, 30, 40);
    expect(Array.from(resizeNearest(src, 3, 2, 6, 1))).toEqual([20, 20, 30, 30, 40, 40]);
  });
});

describe('every kernel, bit for bit as before it used the shared passes', () => {
  const hash = (a: Float32Array | Float64Array) => createHash('sha256').update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength)).digest('hex').slice(0, 16);
  const random = lcg(99);
  const rgb = Uint8Array.from({ length: 97 * 61 * 3 }, () => Math.floor(random() * 256));
  const grid = Float32Array.from({ length: 7 * 9 }, random);
  const map = Float32Array.from({ length: 53 * 41 }, random);
  const grad = Float64Array.from({ length: 40 * 30 }, () => random() - 0.5);
  let seed = 5;
  const next = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
  const grid14 = Float32Array.from({ length: 14 * 14 }, next);
  const map203 = Float32Array.from({ length: 203 * 117 }, next);

  it.each([
    ['bicubic, shrinking', () => resizeRgbToPlanes(rgb, 97, 61, 24, 24), 'dc9563a0a88030b5'],
    ['bicubic, enlarging', () => resizeRgbToPlanes(rgb, 97, 61, 130, 70), '6b5f15591d5916f4'],
    ['bilinear', () => upsampleBilinear(grid, 7, 9, 50, 37), 'aa9f603de112608d'],
    ['Gaussian blur', () => gaussianBlur(map, 53, 41, 2.5), 'd444506389e0aa1b'],
    ['upsample and blur', () => upsampleAndBlur(grid, 7, 9, 120, 95, 6.2), 'feafd2105d9a09b2'],
    ['upsampling transpose', () => upsampleBilinearTranspose(grad, 7, 9, 40, 30), '2e5e593971486a3a'],
    // The column pass in WebAssembly (resize-kernel.ts mapColumnTaps; the last 1003 % 8 values
    // of each row in JavaScript): the hash was taken with the JavaScript passes before the kernel.
    ['upsample and blur, 14×14 → 1003×997 (a 1 MP map)', () => upsampleAndBlur(grid14, 14, 14, 1003, 997, 17.857142857142858), '823c26d724575704'],
    // Reflected borders make its taps non-contiguous: the JavaScript pass, as before.
    ['Gaussian blur, 203×117', () => gaussianBlur(map203, 203, 117, 4.5), '3e2e87da46a3ce77'],
  ] as const)('%s', (_name, run, expected) => {
    expect(hash(run())).toBe(expected);
  });

  it('reuses the composed upsample-and-blur table of a size it has seen', () => {
    expect(upsampleBlurTaps(14, 300, 5)).toBe(upsampleBlurTaps(14, 300, 5));
  });
});
