// From a patch-grid map to an image-size map (method.md §4): bilinear upsampling with
// torch's align_corners=False convention and separable Gaussian smoothing, as tap tables
// (taps.ts) applied rows then columns.
//
// Borders are mirrored half-sample symmetric (… c b a | a b c d … ; scipy.ndimage's default
// "reflect", which AnomalyCLIP's gaussian_filter uses): no energy leaks out of the image, so a
// constant map stays constant, and kernels wider than the image still work.
import { plane, type Plane } from './plane.ts';
import { checkSize, composeTaps, resample2d, tapsFrom, type TapTable } from './taps.ts';
import { upsampleBlurTapsDirect } from './upsample-blur-direct.ts';

/** AnomalyCLIP / Crane smoothing: sigma 4 px at the model input size. */
export const DEFAULT_SIGMA = 4;

/** Kernel radius in sigmas; the truncated kernel is renormalised to sum 1. */
export const KERNEL_RADIUS_SIGMAS = 3;

/** Half-sample symmetric index into [0, n) for any integer i. */
export function reflectIndex(i: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * n;
  const m = ((i % period) + period) % period;
  return m < n ? m : period - 1 - m;
}

/** Normalised Gaussian taps for offsets -r..r, r = ceil(3σ). */
export function gaussianKernel(sigma: number): Float64Array {
  if (!(sigma > 0)) throw new RangeError(`gaussianKernel: sigma must be > 0, got ${sigma}`);
  const radius = Math.ceil(KERNEL_RADIUS_SIGMAS * sigma);
  const taps = new Float64Array(2 * radius + 1);
  let total = 0;
  for (let d = -radius; d <= radius; d++) {
    const v = Math.exp(-(d * d) / (2 * sigma * sigma));
    taps[d + radius] = v;
    total += v;
  }
  for (let i = 0; i < taps.length; i++) taps[i] /= total;
  return taps;
}

/**
 * n → m like torch's interpolate(mode='bilinear', align_corners=False): output o samples the
 * input at (o + 0.5)·n/m − 0.5, clamped at 0; two taps, the second clamped at the last index.
 */
export function bilinearTaps(n: number, m: number): TapTable {
  const scale = n / m;
  return tapsFrom(n, m, 2, (o, add) => {
    const src = Math.max(0, (o + 0.5) * scale - 0.5);
    const lo = Math.min(Math.floor(src), n - 1);
    const frac = src - lo;
    add(lo, 1 - frac);
    add(Math.min(lo + 1, n - 1), frac);
  });
}

/** n → n smoothing with gaussianKernel(sigma), borders reflected; sigma 0 is the identity. */
export function gaussianTaps(n: number, sigma: number): TapTable {
  if (sigma === 0) return tapsFrom(n, n, 1, (o, add) => add(o, 1));
  const kernel = gaussianKernel(sigma);
  const radius = (kernel.length - 1) >> 1;
  return tapsFrom(n, n, kernel.length, (o, add) => {
    for (let t = 0; t < kernel.length; t++) add(reflectIndex(o + t - radius, n), kernel[t]);
  });
}

// Composed tables are small ([m, band]) and image sizes repeat (a camera, a dataset), so the
// last few are kept; building one costs a pass over the full Gaussian table.
const composed = new Map<string, TapTable>();
const COMPOSED_KEPT = 16;

/**
 * Composing the Gaussian table costs m·(2·ceil(3σ)+1); beyond this many times the output
 * pixels, the axis takes upsampleBlurTapsDirect (O(m·band), float rounding ≈1e-13 apart). σ
 * scales with the longer side, so only strips of aspect ratio beyond ~40 get there; photos and
 * camera frames keep the composed table and their bit-exact results.
 */
export const DIRECT_TAPS_PER_PIXEL = 4;

/** Whether an axis of m outputs, in an image of `pixels` outputs, composes its table directly. */
export function directAxis(m: number, sigma: number, pixels: number): boolean {
  return sigma > 0 && m * (2 * Math.ceil(KERNEL_RADIUS_SIGMAS * sigma) + 1) > DIRECT_TAPS_PER_PIXEL * pixels;
}

/**
 * Upsampling n → m followed by smoothing, as one banded table (see upsampleAndBlur);
 * `direct` computes it by prefix sums (upsample-blur-direct.ts) instead of composing tables.
 */
export function upsampleBlurTaps(n: number, m: number, sigma: number, direct = false): TapTable {
  const key = `${n}:${m}:${sigma}:${direct ? 'd' : 'c'}`;
  let t = composed.get(key);
  if (t === undefined) {
    t = direct ? upsampleBlurTapsDirect(n, m, gaussianKernel(sigma)) : composeTaps(gaussianTaps(m, sigma), bilinearTaps(n, m));
    if (composed.size >= COMPOSED_KEPT) composed.delete(composed.keys().next().value!);
  } else {
    composed.delete(key); // re-inserted below: most recently used last
  }
  composed.set(key, t);
  return t;
}

/** The plane bilinearly resized to outW × outH (torch's align_corners=False). */
export function resizeBilinear(p: Plane, outW: number, outH: number, out?: Float32Array): Plane {
  checkSize('outW', outW);
  checkSize('outH', outH);
  plane(p.width, p.height, p.data);
  const data = resample2d(p.data, bilinearTaps(p.width, outW), bilinearTaps(p.height, outH), { out }) as Float32Array;
  return { width: outW, height: outH, data };
}

/** Separable Gaussian smoothing; sigma 0 copies. The pass between rows and columns is float32. */
export function blur(p: Plane, sigma: number = DEFAULT_SIGMA, out?: Float32Array): Plane {
  plane(p.width, p.height, p.data);
  if (sigma === 0) {
    const data = out ?? new Float32Array(p.width * p.height);
    data.set(p.data.subarray(0, p.width * p.height));
    return { width: p.width, height: p.height, data };
  }
  const data = resample2d(p.data, gaussianTaps(p.width, sigma), gaussianTaps(p.height, sigma), { intermediate: 'float32', out }) as Float32Array;
  return { width: p.width, height: p.height, data };
}

/**
 * blur(resizeBilinear(p), sigma) in one step. Both are linear and separable, so per axis they
 * compose into one small table B = G·U, and the result is B_y · grid · B_xᵀ. That costs
 * O(outW·outH·band) with band ≈ a few grid rows, independent of sigma — blurring a 4000×3000
 * map directly with sigma ≈ 70 px would take ~10¹⁰ operations. Building the tables is bounded
 * by DIRECT_TAPS_PER_PIXEL per output pixel whatever the aspect ratio (directAxis).
 */
export function resizeAndBlur(p: Plane, outW: number, outH: number, sigma: number = DEFAULT_SIGMA, out?: Float32Array): Plane {
  checkSize('outW', outW);
  checkSize('outH', outH);
  plane(p.width, p.height, p.data);
  if (!(sigma >= 0)) throw new RangeError(`sigma must be >= 0, got ${sigma}`);
  const pixels = outW * outH;
  const tx = upsampleBlurTaps(p.width, outW, sigma, directAxis(outW, sigma, pixels));
  const ty = upsampleBlurTaps(p.height, outH, sigma, directAxis(outH, sigma, pixels));
  const data = resample2d(p.data, tx, ty, { out }) as Float32Array;
  return { width: outW, height: outH, data };
}

// ---------------------------------------------------------------------------------------------
// The same with positional sizes, as the scoring and evaluation call them.

/** resizeBilinear of `grid` ([h, w] row-major) to [outH, outW]. */
export function upsampleBilinear(grid: Float32Array, h: number, w: number, outW: number, outH: number, out?: Float32Array): Float32Array {
  return resizeBilinear(plane(w, h, grid), outW, outH, out).data;
}

/** blur of `map` ([height, width]). */
export function gaussianBlur(map: Float32Array, width: number, height: number, sigma: number = DEFAULT_SIGMA, out?: Float32Array): Float32Array {
  return blur(plane(width, height, map), sigma, out).data;
}

/** resizeAndBlur of `grid` ([h, w] row-major) to [outH, outW]. */
export function upsampleAndBlur(grid: Float32Array, h: number, w: number, outW: number, outH: number, sigma: number = DEFAULT_SIGMA, out?: Float32Array): Float32Array {
  return resizeAndBlur(plane(w, h, grid), outW, outH, sigma, out).data;
}
