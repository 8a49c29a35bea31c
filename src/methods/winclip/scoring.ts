// WinCLIP / WinCLIP+ scores from the window graph's outputs (method.md §6), step by step as
// anomalib's models/image/winclip/torch_model.py WinClipModel.forward with the helpers of
// utils.py (cosine_similarity, class_scores, visual_association_score):
//   zero-shot  image score  = class_scores(image embedding)
//              map          = harmonic mean over {image score everywhere, each scale's
//                             harmonic_aggregation of its window class scores}
//   few-shot   few map      = mean over {patch-token association, each scale's
//                             harmonic_aggregation of its window associations}
//              map          = (zero-shot map + few map) / 2
//              image score  = (image score + max of the few map) / 2
// Upsampling the grid map to pixels is the caller's (worker-task.ts).
import { harmonicAggregation, harmonicMeanOfMaps, meanOfMaps } from './aggregation.ts';
import type { WindowMasks } from './masks.ts';
import { minDistancesInKernel } from './association-kernel.ts';

/** anomalib's TEMPERATURE: "temperature hyperparameter from the clip paper". */
export const WINCLIP_TEMPERATURE = 0.07;

/** torch.nn.functional.normalize's eps: a vector is divided by max(‖x‖, eps). */
const NORMALIZE_EPS = 1e-12;

/** The two class text embeddings (anomalib's text_embeddings rows 0 and 1). */
export interface WinclipText {
  normal: Float32Array;
  abnormal: Float32Array;
}

/** One image's outputs of the window graph. */
export interface WinclipEmbeddings {
  /** Projected class-token embedding of the whole image, [dim]. */
  imageEmbed: Float32Array;
  /** Per scale (masks order), projected window embeddings [masks.count, dim]. */
  windowEmbeds: Float32Array[];
  /** ln_post'ed patch tokens, not projected (open_clip's `tokens` output), [N, width]. */
  patchTokens: Float32Array;
}

/** The reference images' embeddings, pooled over images (anomalib reshapes them to (-1, D)). */
export interface WinclipReferences {
  /** Per scale, [k · masks.count, dim]. */
  windowEmbeds: Float32Array[];
  /** [k · N, width]. */
  patchTokens: Float32Array;
}

export interface WinclipInput {
  embeddings: WinclipEmbeddings;
  /** Few-shot (WinCLIP+) when given. */
  references?: WinclipReferences;
  text: WinclipText;
  /** One per window scale, in the order of `embeddings.windowEmbeds`. */
  masks: WindowMasks[];
  dim: number;
  /** Vision width: the patch tokens' size. */
  width: number;
  temperature?: number;
}

export interface WinclipScores {
  /** The image score anomalib returns as pred_score. */
  imageScore: number;
  /** The zero-shot class score of the whole image. */
  pImage: number;
  /** [gridH·gridW] map anomalib upsamples to pixels. */
  map: Float64Array;
  zeroShotMap: Float64Array;
  /** With references only. */
  fewShotMap?: Float64Array;
}

/** Rows of `x` ([n, d]) divided by max(‖row‖, eps), in float64, as F.normalize(p=2, dim=-1). */
export function normalizeRows(x: ArrayLike<number>, n: number, d: number): Float64Array {
  if (x.length < n * d) throw new RangeError(`normalizeRows: need [${n}, ${d}] values, got ${x.length}`);
  const out = new Float64Array(n * d);
  for (let r = 0; r < n; r++) {
    let sq = 0;
    for (let k = 0; k < d; k++) sq += x[r * d + k] * x[r * d + k];
    const inv = 1 / Math.max(Math.sqrt(sq), NORMALIZE_EPS);
    for (let k = 0; k < d; k++) out[r * d + k] = x[r * d + k] * inv;
  }
  return out;
}

/**
 * class_scores(embeddings, text_embeddings, temperature, target_class=1): per row of
 * `embeds` ([n, dim]), softmax over [cos(row, normal), cos(row, abnormal)] / T, the abnormal
 * entry.
 */
export function classScores(embeds: ArrayLike<number>, n: number, dim: number, text: WinclipText, temperature = WINCLIP_TEMPERATURE): Float64Array {
  if (!(temperature > 0)) throw new RangeError(`temperature must be > 0, got ${temperature}`);
  if (text.normal.length !== dim || text.abnormal.length !== dim) throw new RangeError(`text embeddings must have ${dim} values`);
  const t = normalizeRows([...text.normal, ...text.abnormal], 2, dim);
  const rows = normalizeRows(embeds, n, dim);
  const out = new Float64Array(n);
  for (let r = 0; r < n; r++) {
    let cosNormal = 0;
    let cosAbnormal = 0;
    for (let k = 0; k < dim; k++) {
      cosNormal += rows[r * dim + k] * t[k];
      cosAbnormal += rows[r * dim + k] * t[dim + k];
    }
    // Two-way softmax, max subtracted as torch does: e^(a-m) / (e^(n-m) + e^(a-m)).
    const ln = cosNormal / temperature;
    const la = cosAbnormal / temperature;
    const m = Math.max(ln, la);
    const ea = Math.exp(la - m);
    out[r] = ea / (Math.exp(ln - m) + ea);
  }
  return out;
}

/**
 * visual_association_score(embeddings, reference_embeddings): per row of `embeds` ([n, d]),
 * min over every reference row ([m, d]) of (1 - cos) / 2.
 */
export function visualAssociationScores(embeds: ArrayLike<number>, n: number, references: ArrayLike<number>, m: number, d: number): Float64Array {
  if (m < 1) throw new RangeError('visualAssociationScores: no reference embeddings');
  const q = normalizeRows(embeds, n, d);
  const r = normalizeRows(references, m, d);
  const out = new Float64Array(n);
  // In WebAssembly, eight rows at a time (association-kernel.ts); here, one row at a time, only
  // without WebAssembly SIMD. Every dot product sums k = 0, 1, … in order in both, so the values
  // are the same bit for bit.
  let i = minDistancesInKernel(q, n, r, m, d, out);
  for (; i < n; i++) {
    let best = Infinity;
    const qi = i * d;
    for (let j = 0; j < m; j++) {
      const rj = j * d;
      let dot = 0;
      for (let k = 0; k < d; k++) dot += q[qi + k] * r[rj + k];
      const distance = 1 - dot;
      if (distance < best) best = distance;
    }
    out[i] = best / 2;
  }
  return out;
}

function checkLengths(input: WinclipInput): void {
  const { embeddings: e, references: ref, masks, dim, width } = input;
  const n = masks[0]?.gridH * masks[0]?.gridW;
  if (masks.length === 0) throw new RangeError('WinCLIP needs at least one window scale');
  if (e.windowEmbeds.length !== masks.length) throw new RangeError(`${e.windowEmbeds.length} window scales for ${masks.length} masks`);
  if (e.imageEmbed.length !== dim) throw new RangeError(`image embedding has ${e.imageEmbed.length} values, expected ${dim}`);
  if (e.patchTokens.length !== n * width) throw new RangeError(`patch tokens hold ${e.patchTokens.length} values, expected ${n}x${width}`);
  masks.forEach((mask, s) => {
    if (e.windowEmbeds[s].length !== mask.count * dim) throw new RangeError(`scale ${mask.kernel}: ${e.windowEmbeds[s].length} values for ${mask.count} windows`);
  });
  if (ref) {
    if (ref.windowEmbeds.length !== masks.length) throw new RangeError(`${ref.windowEmbeds.length} reference window scales for ${masks.length} masks`);
    if (ref.patchTokens.length === 0 || ref.patchTokens.length % (n * width) !== 0) throw new RangeError('reference patch tokens are not whole images');
    const k = ref.patchTokens.length / (n * width);
    masks.forEach((mask, s) => {
      if (ref.windowEmbeds[s].length !== k * mask.count * dim) throw new RangeError(`scale ${mask.kernel}: reference windows are not ${k} images`);
    });
  }
}

/** WinClipModel.forward for one image: zero-shot, plus few-shot when references are given. */
export function scoreWinclip(input: WinclipInput): WinclipScores {
  checkLengths(input);
  const { embeddings: e, references: ref, text, masks, dim, width } = input;
  const temperature = input.temperature ?? WINCLIP_TEMPERATURE;
  const n = masks[0].gridH * masks[0].gridW;

  // _compute_zero_shot_scores: the image score stands for the full-image scale.
  const pImage = classScores(e.imageEmbed, 1, dim, text, temperature)[0];
  const zeroShotScales: Float64Array[] = [new Float64Array(n).fill(pImage)];
  masks.forEach((mask, s) => zeroShotScales.push(harmonicAggregation(classScores(e.windowEmbeds[s], mask.count, dim, text, temperature), mask)));
  const zeroShotMap = harmonicMeanOfMaps(zeroShotScales);
  if (!ref) return { imageScore: pImage, pImage, map: zeroShotMap, zeroShotMap };

  // _compute_few_shot_scores: patch tokens first, then each window scale.
  const fewShotScales: Float64Array[] = [visualAssociationScores(e.patchTokens, n, ref.patchTokens, ref.patchTokens.length / width, width)];
  masks.forEach((mask, s) => {
    const scores = visualAssociationScores(e.windowEmbeds[s], mask.count, ref.windowEmbeds[s], ref.windowEmbeds[s].length / dim, dim);
    fewShotScales.push(harmonicAggregation(scores, mask));
  });
  const fewShotMap = meanOfMaps(fewShotScales);
  const map = new Float64Array(n);
  let fewShotMax = -Infinity;
  for (let i = 0; i < n; i++) {
    map[i] = (zeroShotMap[i] + fewShotMap[i]) / 2;
    fewShotMax = Math.max(fewShotMax, fewShotMap[i]);
  }
  return { imageScore: (pImage + fewShotMax) / 2, pImage, map, zeroShotMap, fewShotMap };
}
