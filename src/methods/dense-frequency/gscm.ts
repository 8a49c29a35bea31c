// GSCM, training-free form (method.md §5): global structural context on the low-frequency
// branch. Every patch is replaced by the similarity-weighted mean of all patches,
//   L'_i = Σ_j softmax_j(<L̂_i, L̂_j> / tau) L_j,
// so a region that disagrees with the object's overall layout is pulled toward what the rest of
// the image looks like only as far as it resembles it.
//
// This is the one O(N²·D) step of the scoring (a Gram matrix and a weighted sum, ~1.5·N²·D
// multiply-adds); both products run through one register-blocked 4×4 kernel on contiguous rows.

import { l2NormalizeRows } from '../../scoring/similarity.ts';

export interface GscmSettings {
  /**
   * Softmax temperature on cosine similarity. 0.1 (a 0.1 cosine gap is a factor e) makes
   * each patch gather from the patches that resemble it rather than from the image mean,
   * which would wash out the low branch into one vector.
   */
  tau: number;
  /**
   * Speed knob: keys and values are the low features average-pooled over keyPool × keyPool
   * cells (queries stay per patch). 1 (default) is the exact formula above; 2 cuts the cost
   * from ~1.5·N²·D to ~0.5·N²·D multiply-adds. The low branch is band-limited by
   * construction, so pooling it loses little — our approximation, not part of the method.
   */
  keyPool: number;
}

export const defaultGscmSettings: GscmSettings = { tau: 0.1, keyPool: 1 };

/** Block results of the 4×4 kernel before they are scattered (tails need guarded writes). */
const block = new Float64Array(16);

/**
 * c = a · bᵀ for a [m, n] and b [p, n] (row-major), into c [m, p]. With `symmetric` (b === a,
 * m === p) only blocks on or above the diagonal are computed and mirrored.
 */
export function multiplyTransposed(
  a: Float32Array,
  m: number,
  b: Float32Array,
  p: number,
  n: number,
  c: Float32Array = new Float32Array(m * p),
  symmetric = false,
): Float32Array {
  if (a.length < m * n || b.length < p * n || c.length < m * p) throw new RangeError('multiplyTransposed: bad sizes');
  for (let i = 0; i < m; i += 4) {
    // Rows past the end are clamped to the last row; their results are not written.
    const a0 = i * n;
    const a1 = Math.min(i + 1, m - 1) * n;
    const a2 = Math.min(i + 2, m - 1) * n;
    const a3 = Math.min(i + 3, m - 1) * n;
    for (let j = symmetric ? i : 0; j < p; j += 4) {
      const b0 = j * n;
      const b1 = Math.min(j + 1, p - 1) * n;
      const b2 = Math.min(j + 2, p - 1) * n;
      const b3 = Math.min(j + 3, p - 1) * n;
      let s00 = 0, s01 = 0, s02 = 0, s03 = 0;
      let s10 = 0, s11 = 0, s12 = 0, s13 = 0;
      let s20 = 0, s21 = 0, s22 = 0, s23 = 0;
      let s30 = 0, s31 = 0, s32 = 0, s33 = 0;
      for (let k = 0; k < n; k++) {
        const x0 = b[b0 + k], x1 = b[b1 + k], x2 = b[b2 + k], x3 = b[b3 + k];
        let u = a[a0 + k];
        s00 += u * x0; s01 += u * x1; s02 += u * x2; s03 += u * x3;
        u = a[a1 + k];
        s10 += u * x0; s11 += u * x1; s12 += u * x2; s13 += u * x3;
        u = a[a2 + k];
        s20 += u * x0; s21 += u * x1; s22 += u * x2; s23 += u * x3;
        u = a[a3 + k];
        s30 += u * x0; s31 += u * x1; s32 += u * x2; s33 += u * x3;
      }
      block[0] = s00; block[1] = s01; block[2] = s02; block[3] = s03;
      block[4] = s10; block[5] = s11; block[6] = s12; block[7] = s13;
      block[8] = s20; block[9] = s21; block[10] = s22; block[11] = s23;
      block[12] = s30; block[13] = s31; block[14] = s32; block[15] = s33;
      const rows = Math.min(4, m - i);
      const cols = Math.min(4, p - j);
      for (let r = 0; r < rows; r++) {
        for (let q = 0; q < cols; q++) {
          const v = block[r * 4 + q];
          c[(i + r) * p + j + q] = v;
          if (symmetric) c[(j + q) * p + i + r] = v;
        }
      }
    }
  }
  return c;
}

/** Softmax of each row of `logits` ([rows, cols], cosines) at temperature tau, in place. */
function softmaxRows(logits: Float32Array, rows: number, cols: number, tau: number): void {
  const invTau = 1 / tau;
  for (let i = 0; i < rows; i++) {
    const base = i * cols;
    let max = -Infinity;
    for (let j = 0; j < cols; j++) if (logits[base + j] > max) max = logits[base + j];
    let total = 0;
    for (let j = 0; j < cols; j++) {
      const e = Math.exp((logits[base + j] - max) * invTau);
      logits[base + j] = e;
      total += e;
    }
    const inv = 1 / total;
    for (let j = 0; j < cols; j++) logits[base + j] *= inv;
  }
}

/**
 * Row-stochastic global affinity W ([n, n]): W[i][j] = softmax_j(<L̂_i, L̂_j> / tau).
 * `out` may be reused across calls to avoid reallocating n² floats.
 */
export function globalAffinity(
  features: Float32Array,
  n: number,
  dim: number,
  tau: number = defaultGscmSettings.tau,
  out: Float32Array = new Float32Array(n * n),
): Float32Array {
  if (!(tau > 0)) throw new RangeError(`gscm: tau must be > 0, got ${tau}`);
  if (features.length < n * dim) throw new RangeError(`gscm: need [${n}, ${dim}] values`);
  const unit = l2NormalizeRows(features, n, dim);
  multiplyTransposed(unit, n, unit, n, dim, out, true);
  softmaxRows(out, n, n, tau);
  return out;
}

/** Mean of each pool × pool cell of a [h*w, dim] grid (edge cells may be smaller). */
export function averagePoolGrid(
  features: Float32Array,
  h: number,
  w: number,
  dim: number,
  pool: number,
): { pooled: Float32Array; ph: number; pw: number } {
  const ph = Math.ceil(h / pool);
  const pw = Math.ceil(w / pool);
  const pooled = new Float32Array(ph * pw * dim);
  const acc = new Float64Array(dim);
  for (let cy = 0; cy < ph; cy++) {
    for (let cx = 0; cx < pw; cx++) {
      acc.fill(0);
      let count = 0;
      for (let y = cy * pool; y < Math.min(h, (cy + 1) * pool); y++) {
        for (let x = cx * pool; x < Math.min(w, (cx + 1) * pool); x++) {
          const src = (y * w + x) * dim;
          for (let c = 0; c < dim; c++) acc[c] += features[src + c];
          count++;
        }
      }
      const dst = (cy * pw + cx) * dim;
      for (let c = 0; c < dim; c++) pooled[dst + c] = acc[c] / count;
    }
  }
  return { pooled, ph, pw };
}

/**
 * Reusable buffers for gscm; sized on first use (a missing or too small one is allocated and
 * stored here). gscm also records the keys it attended to, which the training backward pass
 * (src/training/backward.ts) reads with the affinity.
 */
export interface GscmBuffers {
  affinity?: Float32Array; // [n, keys]
  transposed?: Float32Array; // [dim, keys]
  /** Set by gscm: the keys V ([keyCount, dim]): the low features, or their pooled cells. */
  keys?: Float32Array;
  keyCount?: number;
}

/**
 * L' = W · V ([h*w, dim]) with W the softmax affinity of the low features L to the keys V
 * (V = L, or L pooled when keyPool > 1).
 */
export function gscm(
  low: Float32Array,
  h: number,
  w: number,
  dim: number,
  settings: Partial<GscmSettings> = {},
  out: Float32Array = new Float32Array(h * w * dim),
  buffers: GscmBuffers = {},
): Float32Array {
  const { tau, keyPool } = { ...defaultGscmSettings, ...settings };
  if (!Number.isInteger(keyPool) || keyPool < 1) throw new RangeError(`gscm: keyPool must be an integer >= 1, got ${keyPool}`);
  const n = h * w;
  let keys = low;
  let m = n;
  if (keyPool > 1) {
    const { pooled, ph, pw } = averagePoolGrid(low, h, w, dim, keyPool);
    keys = pooled;
    m = ph * pw;
  }
  const affinity =
    buffers.affinity !== undefined && buffers.affinity.length >= n * m ? buffers.affinity : new Float32Array(n * m);
  if (keys === low) {
    globalAffinity(low, n, dim, tau, affinity);
  } else {
    if (!(tau > 0)) throw new RangeError(`gscm: tau must be > 0, got ${tau}`);
    multiplyTransposed(l2NormalizeRows(low, n, dim), n, l2NormalizeRows(keys, m, dim), m, dim, affinity);
    softmaxRows(affinity, n, m, tau);
  }
  // W · V = W · (Vᵀ)ᵀ: with Vᵀ the kernel again reads contiguous rows.
  const transposed =
    buffers.transposed !== undefined && buffers.transposed.length >= dim * m ? buffers.transposed : new Float32Array(dim * m);
  for (let j = 0; j < m; j++) {
    const base = j * dim;
    for (let c = 0; c < dim; c++) transposed[c * m + j] = keys[base + c];
  }
  multiplyTransposed(affinity, n, transposed, dim, m, out);
  buffers.affinity = affinity;
  buffers.transposed = transposed;
  buffers.keys = keys;
  buffers.keyCount = m;
  return out;
}
