// What the image graph must output for MuSc, and the default layers.
//
// Read from the authors' code (github xrli-U/MuSc):
// - models/musc.py, make_category_data(): `self.features_list = [l+1 for l in feature_layers]`
//   and `image_features, patch_tokens = self.clip_model.encode_image(input_image, self.features_list)`.
// - models/backbone/open_clip/transformer.py, Transformer.forward(): `idx` counts blocks from 1 and
//   `if idx in out_layers: out_tokens.append(x)` — the residual stream x at the OUTPUT of block idx
//   (after its MLP). VisionTransformer.forward() returns these tokens as they are: ln_post and proj
//   are applied to the pooled class token only (the patch-token lines are commented out).
// - models/modules/_LNAMD.py, LNAMD._embed(): `feature = feature[:, 1:, :]  # remove the cls token`.
// - configs/musc.yaml: feature_layers [5, 11, 17, 23] (zero-based) for ViT-L-14-336 (24 blocks);
//   scripts/musc_mvtec_ad.sh: --feature_layers 2 5 8 11 for ViT-B-32 / ViT-B-16 / ViT-B-16-plus-240
//   (12 blocks).
// - RsCIN's image embedding (musc.py): the pooled output `image_features` = ln_post(class token of
//   the last block) @ proj, then `image_features /= image_features.norm(dim=-1, keepdim=True)`.
//
// So the image graph must output, for MuSc:
//   musc_tokens  [B, layers, L, width]  float32 — patch tokens (class token dropped, L = grid²,
//                row-major over the patch grid) of the residual stream at the output of blocks
//                3, 6, 9, 12 (1-based; HF `hidden_states[3|6|9|12][:, 1:]`) for 12-block towers,
//                6, 12, 18, 24 for 24-block towers. Original CLIP path (no dense/V-V path), NO
//                ln_post, NO visual projection; width = vision width (768 for ViT-B/16, 1024 for
//                ViT-L/14).
//   image_embeds [B, dim]  float32 — the existing output (ln_post(class token) @ visual_projection);
//                rscin.ts L2-normalises it, as musc.py does.

import { MuscInputError } from './min-images.ts';

/** Blocks (1-based) for 12-block towers: the authors' `--feature_layers 2 5 8 11`. */
export const MUSC_LAYERS_12 = [3, 6, 9, 12] as const;

/** Blocks (1-based) for 24-block towers: configs/musc.yaml `feature_layers: [5, 11, 17, 23]`. */
export const MUSC_LAYERS_24 = [6, 12, 18, 24] as const;

/**
 * Default MuSc blocks (1-based) for a tower of `blocks` blocks: the authors' choices for 12 and 24,
 * otherwise four evenly spaced blocks ending at the last (round(k·blocks/4), k = 1..4), which is
 * the same rule the two published configurations follow.
 */
export function defaultMuscLayers(blocks: number): number[] {
  if (!Number.isInteger(blocks) || blocks < 4) throw new MuscInputError(`MuSc needs a tower of at least 4 blocks, got ${blocks}`);
  if (blocks === 12) return [...MUSC_LAYERS_12];
  if (blocks === 24) return [...MUSC_LAYERS_24];
  return [1, 2, 3, 4].map((k) => Math.round((k * blocks) / 4));
}

/** The patch grid of the tokens: L = h·w patches, row-major. */
export interface PatchGrid {
  h: number;
  w: number;
}

/**
 * The graph's MuSc outputs for one batch.
 * tokens: [images, layers, h·w, width] (musc_tokens above); imageEmbeds: [images, embedDim].
 */
export interface MuscFeatures {
  tokens: Float32Array;
  images: number;
  layers: number;
  grid: PatchGrid;
  width: number;
  imageEmbeds?: Float32Array;
  embedDim?: number;
}

/** Throws MuscInputError unless the buffers have the shapes the fields claim. */
export function validateMuscFeatures(f: MuscFeatures): void {
  const positive = (name: string, v: number) => {
    if (!Number.isInteger(v) || v < 1) throw new MuscInputError(`${name} must be a positive integer, got ${v}`);
  };
  positive('images', f.images);
  positive('layers', f.layers);
  positive('grid.h', f.grid.h);
  positive('grid.w', f.grid.w);
  positive('width', f.width);
  const expected = f.images * f.layers * f.grid.h * f.grid.w * f.width;
  if (f.tokens.length !== expected) {
    throw new MuscInputError(
      `tokens has ${f.tokens.length} values, expected images·layers·h·w·width = ${f.images}·${f.layers}·${f.grid.h}·${f.grid.w}·${f.width} = ${expected}`,
    );
  }
  if (f.imageEmbeds !== undefined) {
    positive('embedDim', f.embedDim ?? 0);
    if (f.imageEmbeds.length !== f.images * (f.embedDim as number)) {
      throw new MuscInputError(`imageEmbeds has ${f.imageEmbeds.length} values, expected images·embedDim = ${f.images * (f.embedDim as number)}`);
    }
  }
  for (let i = 0; i < f.tokens.length; i++) {
    if (!Number.isFinite(f.tokens[i])) throw new MuscInputError(`tokens[${i}] is not finite`);
  }
}

/** The [L, width] tokens of one image at one layer, as a view (no copy). */
export function layerTokens(f: MuscFeatures, image: number, layer: number): Float32Array {
  const per = f.grid.h * f.grid.w * f.width;
  const start = (image * f.layers + layer) * per;
  return f.tokens.subarray(start, start + per);
}

/** One layer of a batch, layer-normed, as the mutual scoring reads it (msm.ts prepareMsmLayer). */
export interface MsmLayer {
  images: number;
  grid: PatchGrid;
  channels: number;
  degrees: number[];
  /** Layer-normed tokens [N, L, C] (lnamd.ts step 2). */
  normed: Float32Array;
  /** Images in lexicographic order of their normed features' bits: rank[i] < rank[j] ⇒ i plays A. */
  rank: Int32Array;
}
