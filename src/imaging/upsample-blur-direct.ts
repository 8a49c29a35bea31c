// The composed "bilinear n → m, then Gaussian m → m" table of resample-maps.ts, computed in
// O(m·band + radius) instead of O(m·kernel). composeTaps multiplies the two tables: each
// output row costs the whole Gaussian kernel (2·ceil(3σ)+1 taps), and σ scales with the longer
// image side, so a 16384×2 strip (σ ≈ 290 px) builds a 16384 × 1755 Gaussian table for its
// long axis — seconds, for 32 768 output pixels.
//
// Here each output row is summed per piece instead: B[o, g] = Σ_d k(d)·U[reflect(o + d), g].
// Along d the reflected index runs in monotonic pieces of length m, and within a piece the
// bilinear row U[s, ·] has two taps whose weights are affine in s while its lower index stays
// the same. So each (piece, segment) pair contributes prefix sums of k(d) and d·k(d): O(1).
// Mathematically the same table (same truncated, renormalised kernel, same reflection and
// bilinear convention); the float rounding differs (≈1e-13), so resample-maps.ts only takes
// this path where the product would be disproportionate to the output size.
import { tapsFrom, type TapTable } from './taps.ts';

interface Segment {
  /** Upsampled positions s in [start, end). */
  start: number;
  end: number;
  lo: number;
  hi: number;
  /** Weight on `hi` is alpha + beta·s (on `lo`, 1 minus it). */
  alpha: number;
  beta: number;
}

/** The bilinear rows (bilinearTaps) grouped into runs with one lower index and affine weights. */
function bilinearSegments(n: number, m: number): Segment[] {
  const scale = n / m;
  const segments: Segment[] = [];
  for (let s = 0; s < m; s++) {
    const raw = (s + 0.5) * scale - 0.5;
    const clamped = raw < 0;
    const src = clamped ? 0 : raw;
    const lo = Math.min(Math.floor(src), n - 1);
    const hi = Math.min(lo + 1, n - 1);
    const last = segments[segments.length - 1];
    if (last !== undefined && last.lo === lo && last.end === s && (last.beta === 0) === clamped) {
      last.end = s + 1;
      continue;
    }
    segments.push({ start: s, end: s + 1, lo, hi, alpha: clamped ? 0 : 0.5 * scale - 0.5 - lo, beta: clamped ? 0 : scale });
  }
  return segments;
}

/** upsampleBlurTaps(n, m, sigma) by pieces and prefix sums; `kernel` is gaussianKernel(sigma). */
export function upsampleBlurTapsDirect(n: number, m: number, kernel: Float64Array): TapTable {
  const r = (kernel.length - 1) >> 1;
  // p0[i] = Σ_{t < i} k[t], p1[i] = Σ_{t < i} (t − r)·k[t]: sums over d = t − r.
  const p0 = new Float64Array(kernel.length + 1);
  const p1 = new Float64Array(kernel.length + 1);
  for (let t = 0; t < kernel.length; t++) {
    p0[t + 1] = p0[t] + kernel[t];
    p1[t + 1] = p1[t] + (t - r) * kernel[t];
  }
  const segments = bilinearSegments(n, m);
  // The segment holding each position s, so a block visits only the segments it overlaps.
  const segmentAt = new Int32Array(m);
  segments.forEach((seg, i) => segmentAt.fill(i, seg.start, seg.end));
  const dense = new Float64Array(m * n);
  for (let o = 0; o < m; o++) {
    const row = o * n;
    // Blocks of the reflected line: block b covers j in [b·m, (b+1)·m); even blocks map
    // s = j − b·m, odd blocks s = (b+1)·m − 1 − j (half-sample symmetric, as reflectIndex).
    const firstBlock = Math.floor((o - r) / m);
    const lastBlock = Math.floor((o + r) / m);
    for (let b = firstBlock; b <= lastBlock; b++) {
      const jA = Math.max(b * m, o - r);
      const jB = Math.min((b + 1) * m - 1, o + r);
      const even = (b & 1) === 0;
      // s = c0 + c1·d over this block, with d = j − o.
      const c1 = even ? 1 : -1;
      const c0 = even ? o - b * m : (b + 1) * m - 1 - o;
      const sFrom = Math.min(c0 + c1 * (jA - o), c0 + c1 * (jB - o));
      const sTo = Math.max(c0 + c1 * (jA - o), c0 + c1 * (jB - o));
      for (let i = segmentAt[sFrom]; i < segments.length && segments[i].start <= sTo; i++) {
        const seg = segments[i];
        const s1 = Math.max(sFrom, seg.start);
        const s2 = Math.min(sTo, seg.end - 1);
        // The d range of s in [s1, s2], as kernel indices t = d + r.
        const dA = c1 * (s1 - c0);
        const dB = c1 * (s2 - c0);
        const t1 = Math.min(dA, dB) + r;
        const t2 = Math.max(dA, dB) + r;
        const s0 = p0[t2 + 1] - p0[t1];
        const sd = p1[t2 + 1] - p1[t1];
        // Σ k·s = c0·Σk + c1·Σ d·k; weight on hi = Σ k·(alpha + beta·s).
        const toHi = seg.alpha * s0 + seg.beta * (c0 * s0 + c1 * sd);
        dense[row + seg.lo] += s0 - toHi;
        dense[row + seg.hi] += toHi;
      }
    }
  }
  const lo = new Int32Array(m);
  const hi = new Int32Array(m);
  let stride = 1;
  for (let o = 0; o < m; o++) {
    let first = -1;
    let last = -1;
    for (let g = 0; g < n; g++) {
      if (dense[o * n + g] !== 0) {
        if (first < 0) first = g;
        last = g;
      }
    }
    lo[o] = Math.max(first, 0);
    hi[o] = last + 1;
    stride = Math.max(stride, hi[o] - lo[o]);
  }
  return tapsFrom(n, m, stride, (o, add) => {
    for (let g = lo[o]; g < hi[o]; g++) add(g, dense[o * n + g]);
  });
}
