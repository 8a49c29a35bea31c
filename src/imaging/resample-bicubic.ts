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
import { resample2d, tapsFrom, type TapTable } from './taps.ts';

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
