// RsCIN, Re-scoring with Constrained Image-level Neighbourhood (models/modules/_RsCIN.py,
// RsCIN() and MMO(), as models/musc.py calls them):
//   ŝ = (s − min s) / (max s − min s)                     s: the image scores (map maxima)
//   W = F·Fᵀ                                               F: image embeddings, L2-normalised in
//                                                          musc.py (`image_features /= norm`)
//   for each k in k_list: keep the k largest entries of each row of W (topk of the N − k smallest
//   set to 0; the image itself, similarity 1, is among them), P_k = D⁻¹·W_k with D the row sums
//   s′ = mean over k of P_k·ŝ
// k_list: musc.py uses [1, 8, 9] for VisA and [1, 2, 3] for MVTec AD and everything else. k = 1
// keeps only the image itself, so that term is ŝ. A 0 in k_list, or no embeddings, returns the
// scores unchanged (RsCIN()'s first line).
// Our choices where the authors' code is silent: ties in W are broken by the higher ŝ, then the
// lower index (that last rule can only pick between images that give the same result), so the
// result does not depend on upload order; a kept row is summed in that order; k > N is clamped
// to N (torch.topk would raise); equal scores (max = min, the authors' 0/0) give ŝ = 0.

import { MuscInputError } from './min-images.ts';

/** musc.py's k_score for MVTec AD and any other dataset. */
export const RSCIN_K_DEFAULT = [1, 2, 3] as const;

/** musc.py's k_score for VisA. */
export const RSCIN_K_VISA = [1, 8, 9] as const;

/** L2-normalised copy of [N, D] embeddings (float64; a zero vector stays zero). */
function normalisedRows(embeds: ArrayLike<number>, images: number, dim: number): Float64Array {
  const out = new Float64Array(images * dim);
  for (let i = 0; i < images; i++) {
    let sq = 0;
    for (let c = 0; c < dim; c++) sq += embeds[i * dim + c] ** 2;
    const inv = sq > 0 ? 1 / Math.sqrt(sq) : 0;
    for (let c = 0; c < dim; c++) out[i * dim + c] = embeds[i * dim + c] * inv;
  }
  return out;
}

/** (s − min) / (max − min); all zeros when every score is the same. */
export function minMaxNormalise(scores: ArrayLike<number>): Float64Array {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < scores.length; i++) {
    lo = Math.min(lo, scores[i]);
    hi = Math.max(hi, scores[i]);
  }
  const out = new Float64Array(scores.length);
  if (hi > lo) for (let i = 0; i < scores.length; i++) out[i] = (scores[i] - lo) / (hi - lo);
  return out;
}

/**
 * scores [N] (image scores), embeds [N, dim] (image embeddings, normalised here) → refined scores
 * [N] in [0, 1]. kList: positive integers (see RSCIN_K_*), or containing 0 to switch RsCIN off.
 */
export function rscin(scores: ArrayLike<number>, embeds: ArrayLike<number> | undefined, dim: number, kList: readonly number[] = RSCIN_K_DEFAULT): Float64Array {
  const n = scores.length;
  if (embeds === undefined || kList.includes(0)) return Float64Array.from(scores);
  if (kList.length === 0 || kList.some((k) => !Number.isInteger(k) || k < 0)) throw new MuscInputError(`RsCIN k values must be non-negative integers, got [${kList.join(', ')}]`);
  if (embeds.length !== n * dim) throw new MuscInputError(`embeddings have ${embeds.length} values, expected ${n}·${dim}`);
  const f = normalisedRows(embeds, n, dim);
  const s = minMaxNormalise(scores);
  const w = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let dot = 0;
      for (let c = 0; c < dim; c++) dot += f[i * dim + c] * f[j * dim + c];
      w[i * n + j] = dot;
    }
  }
  const out = new Float64Array(n);
  const order = Array.from({ length: n }, (_, j) => j);
  for (let i = 0; i < n; i++) {
    const row = (j: number) => w[i * n + j];
    order.sort((a, b) => row(b) - row(a) || s[b] - s[a] || a - b);
    let total = 0;
    for (const k of kList) {
      const kept = Math.min(k, n);
      let num = 0;
      let den = 0;
      for (let t = 0; t < kept; t++) {
        num += row(order[t]) * s[order[t]];
        den += row(order[t]);
      }
      total += num / den;
    }
    out[i] = total / kList.length;
  }
  return out;
}
