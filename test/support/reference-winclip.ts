// Reference WinCLIP / WinCLIP+ in plain TypeScript, float64, written to be read: it walks
// anomalib's models/image/winclip code path step by step (torch_model.py WinClipModel.encode_image,
// _get_window_embeddings, forward, _compute_zero_shot_scores, _compute_few_shot_scores,
// _collect_text_embeddings; utils.py make_masks, cosine_similarity, class_scores,
// harmonic_aggregation, visual_association_score) on top of the reference CLIP forward in
// reference-clip.ts. Nothing here is shared with src/winclip or the window graph on purpose:
// the masks are rebuilt from unfold's definition, the aggregation loops per patch as anomalib's
// loop does, the upsampling is torch's bilinear written out again.
import type { ClipWeights } from '../../src/clip/types.ts';
import { layerNorm, linear, referenceImageTokens, transformerBlock } from './reference-clip.ts';

export const TEMPERATURE = 0.07;

// ---------------------------------------------------------------------------------------------
// utils.py
// ---------------------------------------------------------------------------------------------

/**
 * make_masks(grid, k, stride): nn.functional.unfold over arange(H·W) as a 1-channel image.
 * unfold's column l is the window at output position l (row-major over the output grid);
 * its row r = ky·k + kx is the input at (oy·s + ky, ox·s + kx). Returns anomalib's
 * [k², nMasks] layout as rows of numbers.
 */
export function makeMasksReference(gridH: number, gridW: number, k: number, stride = 1): number[][] {
  if (gridH < k || gridW < k) throw new Error('grid smaller than the kernel');
  const outH = Math.floor((gridH - k) / stride) + 1;
  const outW = Math.floor((gridW - k) / stride) + 1;
  const rows: number[][] = [];
  for (let ky = 0; ky < k; ky++) {
    for (let kx = 0; kx < k; kx++) {
      const row: number[] = [];
      for (let oy = 0; oy < outH; oy++) for (let ox = 0; ox < outW; ox++) row.push((oy * stride + ky) * gridW + ox * stride + kx);
      rows.push(row);
    }
  }
  return rows;
}

/** F.normalize(x, p=2, dim=-1) of one vector. */
function normalize(v: ArrayLike<number>): Float64Array {
  let sq = 0;
  for (let i = 0; i < v.length; i++) sq += v[i] * v[i];
  const n = Math.max(Math.sqrt(sq), 1e-12);
  return Float64Array.from(v, (x) => x / n);
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/** cosine_similarity(input1 [N, D], input2 [M, D]) → [N][M]. */
export function cosineSimilarity(a: ArrayLike<number>[], b: ArrayLike<number>[]): number[][] {
  const bn = b.map(normalize);
  return a.map((row) => {
    const an = normalize(row);
    return bn.map((r) => dot(an, r));
  });
}

/** class_scores(embeddings, text_embeddings, temperature, target_class=1). */
export function classScoresReference(embeds: ArrayLike<number>[], text: ArrayLike<number>[], temperature = TEMPERATURE): number[] {
  return cosineSimilarity(embeds, text).map((sims) => {
    const logits = sims.map((s) => s / temperature);
    const max = Math.max(...logits);
    const e = logits.map((l) => Math.exp(l - max));
    const total = e.reduce((x, y) => x + y, 0);
    return e[1] / total;
  });
}

/**
 * harmonic_aggregation(window_scores [nMasks], output_size, masks [k², nMasks]), for one
 * image: for each patch idx, patch_mask = any(masks == idx, dim=0);
 * score = sum(patch_mask) / sum(1 / window_scores[patch_mask]); then nan_to_num(posinf=0).
 */
export function harmonicAggregationReference(windowScores: number[], gridH: number, gridW: number, masks: number[][]): number[] {
  const nMasks = masks[0].length;
  const out: number[] = [];
  for (let idx = 0; idx < gridH * gridW; idx++) {
    let count = 0;
    let inverse = 0;
    for (let m = 0; m < nMasks; m++) {
      if (masks.some((row) => row[m] === idx)) {
        count += 1;
        inverse += 1 / windowScores[m];
      }
    }
    let v = count / inverse;
    if (Number.isNaN(v) || v === Infinity) v = 0;
    out.push(v);
  }
  return out;
}

/**
 * visual_association_score(embeddings [N, D], reference_embeddings [K, N', D]):
 * references reshaped to (-1, D); (1 - cosine).min over them, / 2.
 */
export function visualAssociationReference(embeds: ArrayLike<number>[], references: ArrayLike<number>[]): number[] {
  return cosineSimilarity(embeds, references).map((sims) => Math.min(...sims.map((s) => 1 - s)) / 2);
}

// ---------------------------------------------------------------------------------------------
// prompting.py
// ---------------------------------------------------------------------------------------------

const NORMAL_STATES = ['{}', 'flawless {}', 'perfect {}', 'unblemished {}', '{} without flaw', '{} without defect', '{} without damage'];
const ANOMALOUS_STATES = ['damaged {}', '{} with flaw', '{} with defect', '{} with damage'];
const TEMPLATES = [
  'a cropped photo of the {}.', 'a close-up photo of a {}.', 'a close-up photo of the {}.', 'a bright photo of a {}.',
  'a bright photo of the {}.', 'a dark photo of the {}.', 'a dark photo of a {}.', 'a jpeg corrupted photo of the {}.',
  'a jpeg corrupted photo of the {}.', 'a blurry photo of the {}.', 'a blurry photo of a {}.', 'a photo of a {}.',
  'a photo of the {}.', 'a photo of a small {}.', 'a photo of the small {}.', 'a photo of a large {}.',
  'a photo of the large {}.', 'a photo of the {} for visual inspection.', 'a photo of a {} for visual inspection.',
  'a photo of the {} for anomaly detection.', 'a photo of a {} for anomaly detection.',
];

/** create_prompt_ensemble(class_name): [template.format(state) for state in states for template in TEMPLATES]. */
export function createPromptEnsembleReference(className: string): { normal: string[]; anomalous: string[] } {
  const format = (s: string, v: string) => s.replace('{}', v);
  const expand = (states: string[]) => states.map((s) => format(s, className)).flatMap((state) => TEMPLATES.map((t) => format(t, state)));
  return { normal: expand(NORMAL_STATES), anomalous: expand(ANOMALOUS_STATES) };
}

// ---------------------------------------------------------------------------------------------
// torch_model.py
// ---------------------------------------------------------------------------------------------

export interface ReferenceEncoding {
  imageEmbedding: Float64Array; // [dim]
  windowEmbeddings: Float64Array[][]; // per scale, per window [dim]
  patchEmbeddings: Float64Array[]; // per patch [width]
}

function rows(x: Float64Array, n: number, d: number, from = 0): Float64Array[] {
  return Array.from({ length: n }, (_, i) => x.slice((from + i) * d, (from + i + 1) * d));
}

/** ln_pre → transformer → ln_post of one token sequence [T, W]. */
function runTower(w: ClipWeights, tokens: Float64Array, T: number): Float64Array {
  const cfg = w.config.vision;
  let x = layerNorm(tokens, T, cfg.width, w.vision.lnPre.weight.data, w.vision.lnPre.bias.data, cfg.layerNormEps);
  for (const block of w.vision.blocks) x = transformerBlock(x, T, block, cfg.heads, cfg.layerNormEps, cfg.act, false);
  return layerNorm(x, T, cfg.width, w.vision.lnPost.weight.data, w.vision.lnPost.bias.data, cfg.layerNormEps);
}

/**
 * encode_image for image `b` of NCHW `pixels`: the feature map at patch_dropout's input
 * (tokens + position embedding), clip.encode_image's pooled and tokens outputs, and for each
 * scale _get_window_embeddings: index_select with cat(class 0, masks + 1) per mask, then
 * ln_pre, transformer, ln_post, _global_pool ('tok': token 0), @ proj.
 */
export function encodeImageReference(w: ClipWeights, pixels: Float32Array, b: number, size: number, scales: number[]): ReferenceEncoding {
  const cfg = w.config.vision;
  const W = cfg.width;
  const g = size / cfg.patchSize;
  const project = (v: Float64Array) => linear(v, 1, { weight: w.vision.proj });

  const featureMap = referenceImageTokens(w, pixels, b, size); // [1 + g², W]
  const full = runTower(w, featureMap, 1 + g * g);
  const imageEmbedding = project(full.slice(0, W));
  const patchEmbeddings = rows(full, g * g, W, 1);

  const windowEmbeddings = scales.map((k) => {
    const masks = makeMasksReference(g, g, k, 1);
    const nMasks = masks[0].length;
    const out: Float64Array[] = [];
    for (let m = 0; m < nMasks; m++) {
      const mask = [0, ...masks.map((row) => row[m] + 1)];
      const seq = new Float64Array(mask.length * W);
      mask.forEach((t, i) => seq.set(featureMap.subarray(t * W, (t + 1) * W), i * W));
      const x = runTower(w, seq, mask.length);
      out.push(project(x.slice(0, W)));
    }
    return out;
  });
  return { imageEmbedding, windowEmbeddings, patchEmbeddings };
}

/** _collect_text_embeddings: torch.mean of the raw prompt embeddings per class → [normal, abnormal]. */
export function textEmbeddingsReference(normal: ArrayLike<number>[], abnormal: ArrayLike<number>[]): Float64Array[] {
  const mean = (list: ArrayLike<number>[]) => {
    const out = new Float64Array(list[0].length);
    for (const e of list) for (let i = 0; i < out.length; i++) out[i] += e[i];
    return out.map((v) => v / list.length);
  };
  return [mean(normal), mean(abnormal)];
}

export interface ReferenceWinclipResult {
  imageScore: number;
  /** [g·g] multi-scale map before upsampling. */
  grid: number[];
}

/**
 * forward(batch) for one image: class_scores of the image embedding, _compute_zero_shot_scores,
 * and with references (collected by encode_image of the reference images) the few-shot
 * scores and their combination.
 */
export function winclipReference(
  image: ReferenceEncoding,
  text: Float64Array[],
  g: number,
  scales: number[],
  references?: ReferenceEncoding[],
): ReferenceWinclipResult {
  const imageScore0 = classScoresReference([image.imageEmbedding], text)[0];
  const maps: number[][] = [Array.from({ length: g * g }, () => imageScore0)];
  scales.forEach((k, s) => {
    const scores = classScoresReference(image.windowEmbeddings[s], text);
    maps.push(harmonicAggregationReference(scores, g, g, makeMasksReference(g, g, k, 1)));
  });
  let grid = maps[0].map((_, i) => (scales.length + 1) / maps.reduce((sum, m) => sum + 1 / m[i], 0));
  let imageScore = imageScore0;
  if (references && references.length) {
    const few: number[][] = [visualAssociationReference(image.patchEmbeddings, references.flatMap((r) => r.patchEmbeddings))];
    scales.forEach((k, s) => {
      const scores = visualAssociationReference(image.windowEmbeddings[s], references.flatMap((r) => r.windowEmbeddings[s]));
      few.push(harmonicAggregationReference(scores, g, g, makeMasksReference(g, g, k, 1)));
    });
    const fewShot = few[0].map((_, i) => few.reduce((sum, m) => sum + m[i], 0) / few.length);
    grid = grid.map((v, i) => (v + fewShot[i]) / 2);
    imageScore = (imageScore + Math.max(...fewShot)) / 2;
  }
  return { imageScore, grid };
}

/** nn.functional.interpolate(mode='bilinear', align_corners=False) of a [g, g] map to [outH, outW]. */
export function bilinearReference(grid: number[], g: number, outW: number, outH: number): Float64Array {
  const src = (o: number, n: number, m: number) => Math.max(0, ((o + 0.5) * n) / m - 0.5);
  const out = new Float64Array(outW * outH);
  for (let y = 0; y < outH; y++) {
    const sy = src(y, g, outH);
    const y0 = Math.min(Math.floor(sy), g - 1);
    const y1 = Math.min(y0 + 1, g - 1);
    const fy = sy - y0;
    for (let x = 0; x < outW; x++) {
      const sx = src(x, g, outW);
      const x0 = Math.min(Math.floor(sx), g - 1);
      const x1 = Math.min(x0 + 1, g - 1);
      const fx = sx - x0;
      const top = (1 - fx) * grid[y0 * g + x0] + fx * grid[y0 * g + x1];
      const bottom = (1 - fx) * grid[y1 * g + x0] + fx * grid[y1 * g + x1];
      out[y * outW + x] = (1 - fy) * top + fy * bottom;
    }
  }
  return out;
}

export { rows as splitRows };
