// Whole-image resampling to the model's input size, computed the way torchvision's
// `Resize(size, interpolation=BICUBIC, antialias=True)` computes it on float tensors (PyTorch's
// `_upsample_bicubic2d_aa`, Pillow's filter): separable, Keys cubic with a = −0.5, the kernel
// widened by the scale factor when shrinking (anti-aliasing), taps outside the image dropped
// and the rest renormalised, no rounding in between. anomalib's WinCLIP feeds its model exactly
// this, so the same image gives the same input tensor here.
//
// Written by hand rather than with sharp because libvips resamples differently: a box
// pre-shrink for large factors, its own kernel placement, and 8-bit rounding of the result.
// It is plain JavaScript on typed arrays, so callers run it in a worker thread, not on the
// HTTP thread (a 12-megapixel photo takes ~0.2 s). The passes are taps.ts's; only the table
// is bicubic.
import { isIdentity, resample2d, tapsFrom, type TapTable } from './taps.ts';
import { threadKernel, type ColumnKernel } from './resize-kernel.ts';
import { memoryOfAtLeast } from '../util/wasm-asm.ts';

/** A bicubic table; its taps are contiguous, from `start[o]` on. */
export interface ResizeTaps extends TapTable {
  start: Int32Array;
}

/** Keys' cubic convolution kernel with a = −0.5 (Pillow's and PyTorch's antialiased bicubic). */
export function cubicKernel(x: number): number {
  const a = -0.5;
  const t = Math.abs(x);
  if (t < 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
  if (t < 2) return (((t - 5) * t + 8) * t - 4) * a;
  return 0;
}

/** PyTorch's `_compute_weights_aa` for bicubic (align_corners=false, no scale override). */
export function resizeTaps(inSize: number, outSize: number): ResizeTaps {
  if (!(Number.isInteger(inSize) && inSize > 0 && Number.isInteger(outSize) && outSize > 0)) {
    throw new RangeError(`resize sizes must be positive integers, got ${inSize} → ${outSize}`);
  }
  // PyTorch computes the scale in float32 for float inputs.
  const scale = Math.fround(inSize / outSize);
  const support = scale >= 1 ? 2 * scale : 2;
  const invScale = scale >= 1 ? 1 / scale : 1;
  const start = new Int32Array(outSize);
  const raw: number[] = [];
  const table = tapsFrom(inSize, outSize, Math.ceil(support) * 2 + 1, (i, add) => {
    const center = scale * (i + 0.5);
    const lo = Math.max(Math.trunc(center - support + 0.5), 0);
    const n = Math.min(Math.trunc(center + support + 0.5), inSize) - lo;
    let total = 0;
    raw.length = 0;
    for (let j = 0; j < n; j++) {
      const w = cubicKernel((j + lo - center + 0.5) * invScale);
      raw.push(w);
      total += w;
    }
    for (let j = 0; j < n; j++) add(lo + j, total !== 0 ? raw[j] / total : raw[j]);
    start[i] = lo;
  });
  return { ...table, start };
}

/**
 * 8-bit RGB, interleaved, `width`×`height` → three planes (R, G, B) of `outWidth`×`outHeight`
 * float32 in the input's units (0..255; values may overshoot slightly, as PyTorch's do).
 * Width first, then height, as PyTorch does; the intermediate is float64.
 */
export function resizeRgbToPlanes(rgb: Uint8Array, width: number, height: number, outWidth: number, outHeight: number): Float32Array {
  if (rgb.length !== width * height * 3) throw new RangeError(`${rgb.length} bytes is not ${width}×${height}×3`);
  return resample2d(rgb, resizeTaps(width, outWidth), resizeTaps(height, outHeight), { channels: 3, planar: true }) as Float32Array;
}

/** Bicubic tables by (inSize, outSize): uploads come in a few sizes, the output size is fixed. */
const tapCache = new Map<string, ResizeTaps>();

function cachedResizeTaps(inSize: number, outSize: number): ResizeTaps {
  const key = `${inSize}:${outSize}`;
  let t = tapCache.get(key);
  if (!t) {
    if (tapCache.size >= 64) tapCache.clear();
    t = resizeTaps(inSize, outSize);
    tapCache.set(key, t);
  }
  return t;
}

/**
 * resizeRgbToPlanes fused with a per-channel affine map and the planar write: writes
 * fround(resized value) · scale[c] − shift[c] for channel c into `out` from `offset` on (three
 * outWidth×outHeight planes). The same sums in the same order as resizeRgbToPlanes (width first,
 * float64), so the values are bit for bit those of resizeRgbToPlanes followed by the affine map;
 * what changes is the memory: each input row is resampled along x once into a ring of the
 * `ty.stride` rows an output row needs (in cache), instead of through a full-size float64
 * intermediate, and no float32 planes are allocated between resize and normalisation.
 */
export function resizeRgbToAffinePlanes(
  rgb: Uint8Array,
  width: number,
  height: number,
  outWidth: number,
  outHeight: number,
  scale: readonly [number, number, number],
  shift: readonly [number, number, number],
  out: Float32Array,
  offset = 0,
): void {
  if (rgb.length !== width * height * 3) throw new RangeError(`${rgb.length} bytes is not ${width}×${height}×3`);
  const plane = outWidth * outHeight;
  if (out.length < offset + 3 * plane) throw new RangeError(`resizeRgbToAffinePlanes: output holds ${out.length} values, need ${offset + 3 * plane}`);
  const tx = cachedResizeTaps(width, outWidth);
  const ty = cachedResizeTaps(height, outHeight);
  const [scaleR, scaleG, scaleB] = scale;
  const [shiftR, shiftG, shiftB] = shift;
  if (isIdentity(tx) && isIdentity(ty)) {
    // Already at the model's size: only the affine map and the planar write.
    for (let i = 0, p = 0; i < plane; i++, p += 3) {
      out[offset + i] = rgb[p] * scaleR - shiftR;
      out[offset + plane + i] = rgb[p + 1] * scaleG - shiftG;
      out[offset + 2 * plane + i] = rgb[p + 2] * scaleB - shiftB;
    }
    return;
  }
  const kernel = threadKernel();
  if (kernel && !isIdentity(ty) && rgb.length <= MAX_KERNEL_BYTES) {
    columnsFirst(kernel, rgb, width, height, tx, ty, scale, shift, out, offset);
    return;
  }
  const rowLength = outWidth * 3;
  const ringRows = ty.stride;
  const ring = new Float64Array(ringRows * rowLength);
  const acc = new Float64Array(rowLength);
  const { stride: sx, count: cx, weights: wx, start: startX } = tx;
  const inRow = width * 3;
  let next = 0; // the next input row to resample along x
  for (let oy = 0; oy < outHeight; oy++) {
    const first = ty.start[oy];
    const n = ty.count[oy];
    for (; next < first + n; next++) {
      // Along x, exactly resampleRows' RGB loop.
      const s0 = next * inRow;
      const d0 = (next % ringRows) * rowLength;
      for (let x = 0; x < outWidth; x++) {
        const b = x * sx;
        let r = 0;
        let g = 0;
        let bl = 0;
        let p = s0 + startX[x] * 3;
        for (let k = 0, m = cx[x]; k < m; k++, p += 3) {
          const w = wx[b + k];
          r += rgb[p] * w;
          g += rgb[p + 1] * w;
          bl += rgb[p + 2] * w;
        }
        const d = d0 + x * 3;
        ring[d] = r;
        ring[d + 1] = g;
        ring[d + 2] = bl;
      }
    }
    // Along y, in tap order from 0, as resampleColumns: ((0 + w0·r0) + w1·r1) + …
    const b = oy * ty.stride;
    const w0 = ty.weights[b];
    const r0 = (first % ringRows) * rowLength;
    for (let i = 0; i < rowLength; i++) acc[i] = 0 + w0 * ring[r0 + i];
    for (let k = 1; k < n; k++) {
      const w = ty.weights[b + k];
      const rk = ((first + k) % ringRows) * rowLength;
      for (let i = 0; i < rowLength; i++) acc[i] += w * ring[rk + i];
    }
    const dR = offset + oy * outWidth;
    const dG = dR + plane;
    const dB = dG + plane;
    for (let x = 0, i = 0; x < outWidth; x++, i += 3) {
      out[dR + x] = Math.fround(acc[i]) * scaleR - shiftR;
      out[dG + x] = Math.fround(acc[i + 1]) * scaleG - shiftG;
      out[dB + x] = Math.fround(acc[i + 2]) * scaleB - shiftB;
    }
  }
}

/** Uploads up to this size go through the WebAssembly kernel (its memory grows to the largest seen). */
const MAX_KERNEL_BYTES = 64 << 20;

/**
 * resizeRgbToAffinePlanes with the height pass first, on the 8-bit rows in WebAssembly
 * (resize-kernel.ts, float64, tap order), then the width pass in JavaScript on one float64 row
 * per output row. The other order than PyTorch's: each value differs from the width-first sums
 * by float64 rounding only (~1e-13 of 255), far below PyTorch's own float32 rounding.
 */
function columnsFirst(
  kernel: ColumnKernel,
  rgb: Uint8Array,
  width: number,
  height: number,
  tx: ResizeTaps,
  ty: ResizeTaps,
  scale: readonly [number, number, number],
  shift: readonly [number, number, number],
  out: Float32Array,
  offset: number,
): void {
  const outWidth = tx.outSize;
  const outHeight = ty.outSize;
  const plane = outWidth * outHeight;
  const inRow = width * 3;
  // Memory: the image, then the height taps (float64, 8-aligned), then one float64 row.
  const weightsAt = Math.ceil(rgb.length / 8) * 8 + 8;
  const rowAt = weightsAt + ty.weights.length * 8;
  const buffer = memoryOfAtLeast(kernel.memory, rowAt + inRow * 8);
  new Uint8Array(buffer, 0, rgb.length).set(rgb);
  new Float64Array(buffer, weightsAt, ty.weights.length).set(ty.weights);
  const row = new Float64Array(buffer, rowAt, inRow);
  const bytes = new Uint8Array(buffer, 0, rgb.length);
  const simdLength = inRow - (inRow % 8);
  const { stride: sx, count: cx, weights: wx, start: startX } = tx;
  const [scaleR, scaleG, scaleB] = scale;
  const [shiftR, shiftG, shiftB] = shift;
  for (let oy = 0; oy < outHeight; oy++) {
    const first = ty.start[oy];
    const n = ty.count[oy];
    const b = oy * ty.stride;
    kernel.columnTaps(rowAt, first * inRow, simdLength, weightsAt + b * 8, n, inRow);
    // The last inRow % 8 values in JavaScript, the same sums.
    for (let i = simdLength; i < inRow; i++) {
      let acc = 0;
      for (let k = 0; k < n; k++) acc = acc + ty.weights[b + k] * bytes[(first + k) * inRow + i];
      row[i] = acc;
    }
    const dR = offset + oy * outWidth;
    const dG = dR + plane;
    const dB = dG + plane;
    for (let x = 0; x < outWidth; x++) {
      const bx = x * sx;
      let r = 0;
      let g = 0;
      let bl = 0;
      let p = startX[x] * 3;
      for (let k = 0, m = cx[x]; k < m; k++, p += 3) {
        const w = wx[bx + k];
        r += row[p] * w;
        g += row[p + 1] * w;
        bl += row[p + 2] * w;
      }
      out[dR + x] = Math.fround(r) * scaleR - shiftR;
      out[dG + x] = Math.fround(g) * scaleG - shiftG;
      out[dB + x] = Math.fround(bl) * scaleB - shiftB;
    }
  }
}
