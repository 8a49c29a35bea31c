// From a patch-grid map to an image-size map (method.md §4): bilinear upsampling with
// torch's align_corners=False convention and separable Gaussian smoothing.
//
// Borders are mirrored half-sample symmetric (… c b a | a b c d … ; scipy.ndimage's default
// "reflect", which AnomalyCLIP's gaussian_filter uses): no energy leaks out of the image, so a
// constant map stays constant, and kernels wider than the image still work.

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

/** Source position of output index `o` when resizing n → m with align_corners=false. */
function bilinearTaps(n: number, m: number): { i0: Int32Array; i1: Int32Array; frac: Float64Array } {
  const i0 = new Int32Array(m);
  const i1 = new Int32Array(m);
  const frac = new Float64Array(m);
  const scale = n / m;
  for (let o = 0; o < m; o++) {
    // Pixel centres: src = (o + 0.5)·n/m - 0.5, clamped at 0 like torch.
    const src = Math.max(0, (o + 0.5) * scale - 0.5);
    const lo = Math.min(Math.floor(src), n - 1);
    i0[o] = lo;
    i1[o] = Math.min(lo + 1, n - 1);
    frac[o] = src - lo;
  }
  return { i0, i1, frac };
}

function checkSize(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 1) throw new RangeError(`${name} must be a positive integer, got ${v}`);
}

/**
 * Bilinear resize of `grid` ([h, w] row-major) to [outH, outW], like
 * torch.nn.functional.interpolate(mode='bilinear', align_corners=False).
 */
export function upsampleBilinear(
  grid: Float32Array,
  h: number,
  w: number,
  outW: number,
  outH: number,
  out: Float32Array = new Float32Array(outW * outH),
): Float32Array {
  for (const [name, v] of [['h', h], ['w', w], ['outW', outW], ['outH', outH]] as const) checkSize(name, v);
  if (grid.length < h * w) throw new RangeError(`upsampleBilinear: need ${h}x${w} values`);
  const xs = bilinearTaps(w, outW);
  const ys = bilinearTaps(h, outH);
  // Along x once per grid row, then blend two of those rows per output row.
  const rows = new Float64Array(h * outW);
  for (let gy = 0; gy < h; gy++) {
    const src = gy * w;
    const dst = gy * outW;
    for (let x = 0; x < outW; x++) {
      const f = xs.frac[x];
      rows[dst + x] = (1 - f) * grid[src + xs.i0[x]] + f * grid[src + xs.i1[x]];
    }
  }
  for (let y = 0; y < outH; y++) {
    const f = ys.frac[y];
    const r0 = ys.i0[y] * outW;
    const r1 = ys.i1[y] * outW;
    const dst = y * outW;
    for (let x = 0; x < outW; x++) out[dst + x] = (1 - f) * rows[r0 + x] + f * rows[r1 + x];
  }
  return out;
}

/** Separable Gaussian blur of `map` ([height, width]); sigma 0 copies. */
export function gaussianBlur(
  map: Float32Array,
  width: number,
  height: number,
  sigma: number = DEFAULT_SIGMA,
  out: Float32Array = new Float32Array(width * height),
): Float32Array {
  checkSize('width', width);
  checkSize('height', height);
  if (map.length < width * height) throw new RangeError(`gaussianBlur: need ${width}x${height} values`);
  if (sigma === 0) {
    out.set(map.subarray(0, width * height));
    return out;
  }
  const taps = gaussianKernel(sigma);
  const radius = (taps.length - 1) >> 1;

  // Horizontal: convolve a reflect-padded copy of each row, so the inner loop has no branches.
  const tmp = new Float32Array(width * height);
  const padded = new Float64Array(width + 2 * radius);
  for (let y = 0; y < height; y++) {
    const base = y * width;
    for (let p = 0; p < padded.length; p++) padded[p] = map[base + reflectIndex(p - radius, width)];
    for (let x = 0; x < width; x++) {
      let s = 0;
      for (let t = 0; t < taps.length; t++) s += taps[t] * padded[x + t];
      tmp[base + x] = s;
    }
  }
  // Vertical: whole rows at a time (contiguous memory), accumulated in float64.
  const acc = new Float64Array(width);
  for (let y = 0; y < height; y++) {
    acc.fill(0);
    for (let t = 0; t < taps.length; t++) {
      const a = taps[t];
      const src = reflectIndex(y + t - radius, height) * width;
      for (let x = 0; x < width; x++) acc[x] += a * tmp[src + x];
    }
    const dst = y * width;
    for (let x = 0; x < width; x++) out[dst + x] = acc[x];
  }
  return out;
}

/**
 * 1-D operator "upsample n → m, then blur" as a dense [m, n] matrix plus, per output index,
 * the band [lo, hi) of grid indices with a non-zero weight.
 */
function upsampleBlurOperator(n: number, m: number, sigma: number): { weights: Float64Array; lo: Int32Array; hi: Int32Array } {
  const { i0, i1, frac } = bilinearTaps(n, m);
  const weights = new Float64Array(m * n);
  const taps = sigma > 0 ? gaussianKernel(sigma) : Float64Array.of(1);
  const radius = (taps.length - 1) >> 1;
  for (let o = 0; o < m; o++) {
    const row = o * n;
    for (let t = 0; t < taps.length; t++) {
      const s = reflectIndex(o + t - radius, m);
      weights[row + i0[s]] += taps[t] * (1 - frac[s]);
      weights[row + i1[s]] += taps[t] * frac[s];
    }
  }
  const lo = new Int32Array(m);
  const hi = new Int32Array(m);
  for (let o = 0; o < m; o++) {
    let first = n;
    let last = -1;
    for (let g = 0; g < n; g++) {
      if (weights[o * n + g] !== 0) {
        if (first === n) first = g;
        last = g;
      }
    }
    lo[o] = first === n ? 0 : first;
    hi[o] = last + 1;
  }
  return { weights, lo, hi };
}

/**
 * gaussianBlur(upsampleBilinear(grid), sigma) in one step. Both operations are linear and
 * separable, so per axis they compose into one small [out, grid] matrix B = G·U and the result
 * is B_y · grid · B_xᵀ. That costs O(outW·outH·band) with band ≈ a few grid rows, independent
 * of sigma — blurring a 4000×3000 map directly with sigma ≈ 70 px would take ~10¹⁰ operations.
 */
export function upsampleAndBlur(
  grid: Float32Array,
  h: number,
  w: number,
  outW: number,
  outH: number,
  sigma: number = DEFAULT_SIGMA,
  out: Float32Array = new Float32Array(outW * outH),
): Float32Array {
  for (const [name, v] of [['h', h], ['w', w], ['outW', outW], ['outH', outH]] as const) checkSize(name, v);
  if (grid.length < h * w) throw new RangeError(`upsampleAndBlur: need ${h}x${w} values`);
  if (!(sigma >= 0)) throw new RangeError(`sigma must be >= 0, got ${sigma}`);
  const bx = upsampleBlurOperator(w, outW, sigma);
  const by = upsampleBlurOperator(h, outH, sigma);
  // rows[gy, x] = Σ_gx grid[gy, gx] · Bx[x, gx]
  const rows = new Float64Array(h * outW);
  for (let gy = 0; gy < h; gy++) {
    const src = gy * w;
    const dst = gy * outW;
    for (let x = 0; x < outW; x++) {
      const wr = x * w;
      let s = 0;
      for (let gx = bx.lo[x]; gx < bx.hi[x]; gx++) s += grid[src + gx] * bx.weights[wr + gx];
      rows[dst + x] = s;
    }
  }
  // out[y, x] = Σ_gy By[y, gy] · rows[gy, x], whole output rows at a time.
  const acc = new Float64Array(outW);
  for (let y = 0; y < outH; y++) {
    acc.fill(0);
    for (let gy = by.lo[y]; gy < by.hi[y]; gy++) {
      const a = by.weights[y * h + gy];
      const src = gy * outW;
      for (let x = 0; x < outW; x++) acc[x] += a * rows[src + x];
    }
    const dst = y * outW;
    for (let x = 0; x < outW; x++) out[dst + x] = acc[x];
  }
  return out;
}
