// WinCLIP's image side as one ONNX graph (method.md §6), following anomalib's
// models/image/winclip/torch_model.py WinClipModel.encode_image on open_clip's VisionTransformer:
//
//   pixel_values [B, 3, S, S]
//     → conv patches + class token + (resized) position embedding = the "feature map"
//       [B, 1+N, W] anomalib hooks at the input of patch_dropout (identity at inference)
//     → full sequence: ln_pre → blocks → ln_post
//          image_embeds [B, dim]  = class token · proj        (encode_image's pooled output)
//          patch_tokens [B, N, W] = patch tokens, not projected (open_clip's `tokens`, used by
//                                   the few-shot patch-level association)
//     → per window size k (_get_window_embeddings): Gather the feature map with a constant
//       [nWindows, 1+k²] token table (class index 0 first, masks.ts) → one sequence per window
//       → ln_pre → blocks → ln_post on the class token → proj
//          window_embeds_k{k} [B, nWindows, dim]
//
// anomalib concatenates the windows of all images mask-major and reshapes back with
// (n_masks, batch) — consistent, each image keeps its own windows. Here the gathered tensor is
// [B, nWindows, 1+k², W] and is flattened batch-major; every sequence runs on its own, so an
// image's outputs do not depend on the rest of the batch (tested).
import type { ClipWeights } from '../../clip/types.ts';
import { ensureGraph, type BuiltGraph, type GraphSpec, type GraphVariant } from '../../clip/onnx/graph-cache.ts';
import type { PositionResize } from '../../clip/onnx/position-embedding.ts';
import type { Numerics } from '../../clip/onnx/quantize.ts';
import { makeMasks, windowTokenIndices } from './masks.ts';
import { GraphBuilder } from '../../clip/onnx/graph-builder.ts';
import { layerNorm, patchGrid, pixelTokens, residualBlock, transpose2d } from '../../clip/onnx/transformer-ops.ts';

export interface WindowGraphOptions {
  imageSize: number;
  /** Window sides in patches, stride 1 (anomalib's scales, default (2, 3)). */
  windowSizes: number[];
  /** How the position embedding is resized for a non-native size (position-embedding.ts); default 'hf'. */
  positionResize?: PositionResize;
}

export const DEFAULT_WINDOW_SIZES: readonly number[] = [2, 3];

export function windowOutputName(k: number): string {
  return `window_embeds_k${k}`;
}

export function validateWindowGraphOptions(weights: ClipWeights, opts: WindowGraphOptions): void {
  const { grid } = patchGrid(weights.config.vision, opts.imageSize);
  if (opts.windowSizes.length === 0) throw new Error('at least one window size is needed');
  if (new Set(opts.windowSizes).size !== opts.windowSizes.length) throw new Error(`window sizes ${opts.windowSizes.join(',')} repeat a size`);
  for (const k of opts.windowSizes) {
    if (!Number.isInteger(k) || k < 1 || k > grid) throw new Error(`window size ${k} must be a whole number in 1..${grid} (the patch grid)`);
  }
}

/** `numerics`: int8 linear layers (quantize.ts), calibrated on the image graph's sequences. */
export function buildWindowGraph(weights: ClipWeights, opts: WindowGraphOptions, modelPath: string, numerics?: Numerics): void {
  validateWindowGraphOptions(weights, opts);
  const { vision: cfg, projectionDim } = weights.config;
  const w = weights.vision;
  const width = cfg.width;
  const { grid, patches: N } = patchGrid(cfg, opts.imageSize);
  GraphBuilder.write(modelPath, 'clip_winclip', (g) => {
    const featureMap = pixelTokens(g, w, cfg, opts);

    // ln_pre and the blocks on any [sequences, tokens, W]; weights are stored once and shared.
    // `classOnly`: the last block goes on past its keys and values for the class token alone
    // (exact when only the class token is read: the windows' embeddings).
    const tower = (x: string, tag: string, classOnly = false) => {
      let h = layerNorm(g, x, w.lnPre, cfg.layerNormEps, 'ln_pre');
      const last = w.blocks.length - 1;
      w.blocks.forEach((block, i) => {
        h = residualBlock(g, h, block, { heads: cfg.heads, eps: cfg.layerNormEps, act: cfg.act, prefix: `${tag}${i}`, numerics, classOnly: classOnly && i === last }).out;
      });
      return h;
    };
    const lnPost = (x: string) => layerNorm(g, x, w.lnPost, cfg.layerNormEps, 'ln_post');
    const proj = g.weight('visual_proj', transpose2d(w.proj), [width, projectionDim]);
    const classToken = (x: string) => g.op('Gather', [x, g.constI64([0], [])], { axis: 1 });

    const full = lnPost(tower(featureMap, 'v'));
    g.output(g.op('MatMul', [classToken(full), proj]), 'image_embeds', 'float32', ['batch', projectionDim]);
    g.output(g.op('Slice', [full, g.constI64([1]), g.constI64([1 + N]), g.constI64([1])]), 'patch_tokens', 'float32', ['batch', N, width]);

    for (const k of opts.windowSizes) {
      const masks = makeMasks(grid, grid, k, 1);
      const L = 1 + masks.size;
      const table = g.constI64(Array.from(windowTokenIndices(masks)), [masks.count, L]);
      // [B, 1+N, W] gathered on axis 1 with [count, L] → [B, count, L, W] → [B·count, L, W].
      const sequences = g.op('Reshape', [g.op('Gather', [featureMap, table], { axis: 1 }), g.constI64([-1, L, width])]);
      const pooled = lnPost(classToken(tower(sequences, `w${k}_`, true)));
      const embeds = g.op('Reshape', [g.op('MatMul', [pooled, proj]), g.constI64([-1, masks.count, projectionDim])]);
      g.output(embeds, windowOutputName(k), 'float32', ['batch', masks.count, projectionDim]);
    }
    return `WinCLIP window embeddings ${opts.imageSize}px, window sizes ${opts.windowSizes.join(',')} (stride 1)${numerics?.int8 ? ', int8 linear layers' : ''}`;
  });
}

/** The window graph as a method graph: built and cached by the runtime (model `winclip`). */
export function windowGraphSpec(options: WindowGraphOptions): GraphSpec {
  return {
    name: 'winclip',
    options,
    // 2: the windows' last block for their class tokens only.
    revision: 2,
    validate: (weights) => validateWindowGraphOptions(weights, options),
    quantizable: true,
    build: (weights, file, context) =>
      buildWindowGraph(weights, { ...options, ...(context.positionResize && !options.positionResize ? { positionResize: context.positionResize } : {}) }, file, context.numerics),
  };
}

/** The window graph for a checkpoint folder, from the graph cache or built into it. */
export function ensureWindowGraph(
  folder: string,
  cacheDir: string,
  options: WindowGraphOptions,
  loadWeights: () => Promise<ClipWeights>,
  variant: GraphVariant = {},
): Promise<BuiltGraph> {
  return ensureGraph(folder, cacheDir, windowGraphSpec(options), loadWeights, undefined, variant);
}
