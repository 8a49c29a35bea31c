// LNAMD, Local Neighbourhood Aggregation with Multiple Degrees (models/modules/_LNAMD.py,
// LNAMD._embed(), then models/musc.py `features /= features.norm(dim=-1, keepdim=True)`):
//   1. drop the class token, view the L patch tokens as a [C, h, w] map;
//   2. `torch.nn.LayerNorm([C, h, w])`, built fresh on every call: ONE mean and variance over all
//      C·h·w values of the image (not per patch, not per channel), biased variance, eps 1e-5, and
//      its affine weight/bias are their initial 1/0, so no affine;
//   3. r > 1: PatchMaker.patchify() = torch.nn.Unfold(kernel r, stride 1, padding (r−1)/2, zero
//      padding) → [L, C, r, r]; the Preprocessing/MeanMapper step reshapes each to C·r² values and
//      adaptive_avg_pool1d's them to C, and since C·r²/C = r² is an integer each output channel is
//      the mean of exactly its own r² values — the zero-padded r×r mean (padding counted, ÷ r²).
//      r = 1 is a reshape only;
//   4. L2-normalise every patch vector.
// MSM does not materialise step 3 for every r: pair-engine.ts uses the identity
//   ⟨Σ_{a∈N(p)} x̃_a, Σ_{b∈N(q)} ỹ_b⟩ = Σ_{a∈N(p)} Σ_{b∈N(q)} ⟨x̃_a, ỹ_b⟩
// on one Gram matrix of the layer-normed tokens (step 2, layerNormImage), and the norms of the
// sums (the ÷r² of the mean cancels in step 4). lnamd() is the literal pipeline, for tests and
// for callers that want the aggregated features themselves.

import type { PatchGrid } from './features.ts';
import { MuscInputError } from './min-images.ts';

/** torch.nn.LayerNorm's default eps (_LNAMD.py constructs it without one). */
export const LNAMD_EPS = 1e-5;

/** The authors' aggregation degrees: configs/musc.yaml `r_list: [1, 3, 5]`. */
export const MUSC_R_LIST = [1, 3, 5] as const;

/** r must be odd: PatchMaker pads by int((r−1)/2), so an even r would change the grid size. */
export function checkDegree(r: number): void {
  if (!Number.isInteger(r) || r < 1 || r % 2 === 0) throw new MuscInputError(`aggregation degree r must be an odd positive integer, got ${r}`);
}

/**
 * Step 2: LayerNorm over all L·C values of one image and layer.
 * tokens [L, C] → [L, C] float32, (x − μ) / sqrt(σ² + eps) with μ, σ² (biased) over the whole map.
 * Statistics in float64, in index order, so the result depends on this image alone.
 */
export function layerNormImage(tokens: Float32Array, out: Float32Array = new Float32Array(tokens.length)): Float32Array {
  const n = tokens.length;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += tokens[i];
  const mean = sum / n;
  let sq = 0;
  for (let i = 0; i < n; i++) {
    const d = tokens[i] - mean;
    sq += d * d;
  }
  const inv = 1 / Math.sqrt(sq / n + LNAMD_EPS);
  for (let i = 0; i < n; i++) out[i] = (tokens[i] - mean) * inv;
  return out;
}

/**
 * Zero-padded r×r neighbourhood SUM of a [h·w, C] map (stride 1, same grid): separable, first
 * along x within each grid row, then along y. Returns [h·w, C] float64.
 */
export function neighbourhoodSum(x: Float32Array, grid: PatchGrid, channels: number, r: number): Float64Array {
  checkDegree(r);
  const { h, w } = grid;
  const rho = (r - 1) >> 1;
  const horizontal = new Float64Array(h * w * channels);
  for (let p = 0; p < h * w; p++) {
    const xx = p % w;
    for (let dx = Math.max(-rho, -xx); dx <= Math.min(rho, w - 1 - xx); dx++) {
      for (let c = 0, o = p * channels, s = (p + dx) * channels; c < channels; c++) horizontal[o + c] += x[s + c];
    }
  }
  const out = new Float64Array(h * w * channels);
  for (let y = 0; y < h; y++) {
    for (let dy = Math.max(-rho, -y); dy <= Math.min(rho, h - 1 - y); dy++) {
      for (let i = 0, o = y * w * channels, s = (y + dy) * w * channels; i < w * channels; i++) out[o + i] += horizontal[s + i];
    }
  }
  return out;
}

/**
 * The literal LNAMD of one image and layer: tokens [L, C] (class token already dropped) →
 * Z [L, C] float32 of unit vectors, for aggregation degree r.
 */
export function lnamd(tokens: Float32Array, grid: PatchGrid, channels: number, r: number): Float32Array {
  checkDegree(r);
  const L = grid.h * grid.w;
  if (tokens.length !== L * channels) throw new MuscInputError(`tokens has ${tokens.length} values, expected ${L}·${channels}`);
  const normed = layerNormImage(tokens);
  const sums = neighbourhoodSum(normed, grid, channels, r);
  const area = r * r;
  const out = new Float32Array(L * channels);
  for (let p = 0; p < L; p++) {
    const o = p * channels;
    let sq = 0;
    for (let c = 0; c < channels; c++) {
      const m = sums[o + c] / area;
      sums[o + c] = m;
      sq += m * m;
    }
    const inv = sq > 0 ? 1 / Math.sqrt(sq) : 0;
    for (let c = 0; c < channels; c++) out[o + c] = sums[o + c] * inv;
  }
  return out;
}
