// Frequency split of a grid of patch features into a low-pass and a high-pass part
// (method.md §5): low = IDFT2(G · DFT2(X)) per channel with a Gaussian low-pass G, high = X - low.
//
// Why two small real matrix products instead of FFTs: G(u, v) = exp(-(fu² + fv²) / (2r²))
// = g_h(u) · g_w(v) is separable, so per channel
//   low = (F_h⁻¹ diag(g_h) F_h) · X · (F_w⁻¹ diag(g_w) F_w)ᵀ = A_h X A_wᵀ.
// A = F⁻¹ diag(g) F is circulant with A[a][b] = (1/n) Σ_k g_k exp(2πi k (a-b) / n). g is even
// in the signed frequency (g_k = g_{n-k}; for even n the Nyquist bin k = n/2 is its own
// mirror), so the sine parts cancel and A[a][b] = (1/n) Σ_k g_k cos(2π k (a-b) / n) is real
// and symmetric. Applying A_w along x and A_h along y to all channels at once costs
// O(h·w·(h+w)·D) instead of O(h²·w²·D) for a dense 2-D operator.
// Like any DFT filter this treats the grid as periodic: opposite borders blend into each other.

/** Gaussian radius as a fraction of the Nyquist frequency; 0.25 keeps the coarse layout. */
export const DEFAULT_CUTOFF = 0.25;

/**
 * Filter taps smaller than this fraction of the largest tap are skipped: they change the
 * result by less than float32 rounding. At cutoff 0.25 the gain left at Nyquist (e^-8) gives
 * every tap a ~1e-5 ringing tail, so nothing is skipped; smaller cutoffs get sparse rows.
 */
export const NEGLIGIBLE_TAP = 1e-10;

/** Filter taps cached per (length, cutoff); grids come in a few sizes only. */
const MAX_CACHED_FILTERS = 32;

/** Signed frequency of DFT bin k as a fraction of the Nyquist frequency, in [-1, 1). */
export function signedNyquistFraction(k: number, n: number): number {
  const signed = k < n / 2 ? k : k - n;
  return signed / (n / 2);
}

/** Dense real n×n matrix A = real(F⁻¹ diag(g) F) for the 1-D Gaussian low-pass (row-major). */
export function lowPassMatrix(n: number, cutoff: number): Float64Array {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`lowPassMatrix: bad length ${n}`);
  if (!(cutoff > 0)) throw new RangeError(`cutoff must be > 0, got ${cutoff}`);
  const gain = new Float64Array(n);
  for (let k = 0; k < n; k++) {
    const f = signedNyquistFraction(k, n);
    gain[k] = Math.exp(-(f * f) / (2 * cutoff * cutoff));
  }
  // Circulant: one value per offset d = (a - b) mod n.
  const byOffset = new Float64Array(n);
  for (let d = 0; d < n; d++) {
    let s = 0;
    for (let k = 0; k < n; k++) s += gain[k] * Math.cos((2 * Math.PI * k * d) / n);
    byOffset[d] = s / n;
  }
  const a = new Float64Array(n * n);
  for (let r = 0; r < n; r++) for (let c = 0; c < n; c++) a[r * n + c] = byOffset[(((r - c) % n) + n) % n];
  return a;
}

/** A's rows as sparse (column, weight) lists, with negligible taps dropped. */
interface SparseRows {
  start: Int32Array; // row r's taps are [start[r], start[r + 1])
  column: Int32Array;
  weight: Float64Array;
}

const filterCache = new Map<string, SparseRows>();

function sparseLowPass(n: number, cutoff: number): SparseRows {
  const key = `${n}:${cutoff}`;
  const hit = filterCache.get(key);
  if (hit !== undefined) return hit;
  const dense = lowPassMatrix(n, cutoff);
  let max = 0;
  for (let i = 0; i < dense.length; i++) max = Math.max(max, Math.abs(dense[i]));
  const limit = max * NEGLIGIBLE_TAP;
  const start = new Int32Array(n + 1);
  const columns: number[] = [];
  const weights: number[] = [];
  for (let r = 0; r < n; r++) {
    start[r] = columns.length;
    for (let c = 0; c < n; c++) {
      const v = dense[r * n + c];
      if (Math.abs(v) > limit) {
        columns.push(c);
        weights.push(v);
      }
    }
  }
  start[n] = columns.length;
  const rows = { start, column: Int32Array.from(columns), weight: Float64Array.from(weights) };
  if (filterCache.size >= MAX_CACHED_FILTERS) filterCache.clear();
  filterCache.set(key, rows);
  return rows;
}

/**
 * acc[0..length) = Σ_p weight_p · src[offset + column_p · stride + k] over the taps of `row`.
 * Taps are applied four at a time so the accumulator is read and written once per four taps
 * (this loop is memory-bound).
 */
function applyTaps(
  taps: SparseRows,
  row: number,
  src: Float32Array,
  offset: number,
  stride: number,
  acc: Float64Array,
  length: number,
): void {
  for (let k = 0; k < length; k++) acc[k] = 0;
  let p = taps.start[row];
  const end = taps.start[row + 1];
  for (; p + 4 <= end; p += 4) {
    const a0 = taps.weight[p], a1 = taps.weight[p + 1], a2 = taps.weight[p + 2], a3 = taps.weight[p + 3];
    const s0 = offset + taps.column[p] * stride;
    const s1 = offset + taps.column[p + 1] * stride;
    const s2 = offset + taps.column[p + 2] * stride;
    const s3 = offset + taps.column[p + 3] * stride;
    for (let k = 0; k < length; k++) {
      acc[k] += a0 * src[s0 + k] + a1 * src[s1 + k] + a2 * src[s2 + k] + a3 * src[s3 + k];
    }
  }
  for (; p < end; p++) {
    const a = taps.weight[p];
    const s0 = offset + taps.column[p] * stride;
    for (let k = 0; k < length; k++) acc[k] += a * src[s0 + k];
  }
}

export interface FrequencySplit {
  low: Float32Array;
  high: Float32Array;
}

/** Optional preallocated outputs ([h*w*D] each) to keep repeated calls allocation-free. */
export interface FrequencyBuffers {
  low?: Float32Array;
  high?: Float32Array;
}

/**
 * Splits `x` ([h*w, D], row-major patches, row index = y*w + x) into low + high, with
 * low + high = x up to float32 rounding of the subtraction.
 */
export function splitFrequency(
  x: Float32Array,
  h: number,
  w: number,
  dim: number,
  cutoff: number = DEFAULT_CUTOFF,
  buffers: FrequencyBuffers = {},
): FrequencySplit {
  const n = h * w;
  const size = n * dim;
  if (x.length < size) throw new RangeError(`splitFrequency: need [${h}*${w}, ${dim}] values, got ${x.length}`);
  const aw = sparseLowPass(w, cutoff);
  const ah = sparseLowPass(h, cutoff);
  const low = buffers.low ?? new Float32Array(size);
  const high = buffers.high ?? new Float32Array(size);

  // Pass 1, along x inside each grid row: t[y, x, :] = Σ_x' A_w[x, x'] X[y, x', :].
  // Pass 2, along y on whole grid rows (w*D contiguous values): low[y] = Σ_y' A_h[y, y'] t[y'].
  // Both accumulate in float64 so the result matches a direct DFT to float32 precision.
  const t = new Float32Array(size);
  const acc = new Float64Array(w * dim);
  for (let y = 0; y < h; y++) {
    for (let xo = 0; xo < w; xo++) {
      applyTaps(aw, xo, x, y * w * dim, dim, acc, dim);
      t.set(acc.subarray(0, dim), (y * w + xo) * dim);
    }
  }
  const rowLength = w * dim;
  for (let y = 0; y < h; y++) {
    applyTaps(ah, y, t, 0, rowLength, acc, rowLength);
    const dst = y * rowLength;
    for (let k = 0; k < rowLength; k++) {
      low[dst + k] = acc[k];
      high[dst + k] = x[dst + k] - low[dst + k];
    }
  }
  return { low, high };
}
