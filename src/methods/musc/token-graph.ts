// MuSc's image side as one ONNX graph (features.ts says what it must output): the original
// CLIP vision path, with no dense path and no window sequences.
//
//   pixel_values [B, 3, S, S]
//     → conv patches + class token + (resized) position embedding → ln_pre → blocks
//          musc_tokens  [B, layers, N, W] = the residual stream at the output of each block in
//                        `layers` (1-based, defaultMuscLayers), class token dropped, NO ln_post,
//                        NO projection (open_clip's out_tokens as MuSc reads them)
//          image_embeds [B, dim]          = ln_post(class token of the last block) · proj
//
// Every image runs on its own (no op mixes the batch), so an image's outputs do not depend on
// the rest of the batch or on how the batch is split into session runs.
import type { ClipWeights } from '../../clip/types.ts';
import type { GraphSpec } from '../../clip/onnx/graph-cache.ts';
import type { PositionResize } from '../../clip/onnx/position-embedding.ts';
import { GraphBuilder } from '../../clip/onnx/graph-builder.ts';
import { layerNorm, patchGrid, pixelTokens, residualBlock, transpose2d } from '../../clip/onnx/transformer-ops.ts';

export interface TokenGraphOptions {
  imageSize: number;
  /** Blocks (1-based) whose output tokens are returned, in order. */
  layers: number[];
  /** How the position embedding is resized for a non-native size (position-embedding.ts); default 'hf'. */
  positionResize?: PositionResize;
}

/** The graph's name in the runtime and the workers. */
export const MUSC_GRAPH = 'musc';

export function validateTokenGraphOptions(weights: ClipWeights, opts: TokenGraphOptions): void {
  const blocks = weights.config.vision.layers;
  patchGrid(weights.config.vision, opts.imageSize);
  if (opts.layers.length === 0) throw new Error('at least one MuSc layer is needed');
  for (const l of opts.layers) {
    if (!Number.isInteger(l) || l < 1 || l > blocks) throw new Error(`MuSc layer ${l} is outside 1..${blocks}`);
  }
}

export function buildTokenGraph(weights: ClipWeights, opts: TokenGraphOptions, modelPath: string): void {
  validateTokenGraphOptions(weights, opts);
  const { vision: cfg, projectionDim } = weights.config;
  const w = weights.vision;
  const width = cfg.width;
  const N = patchGrid(cfg, opts.imageSize).patches;
  GraphBuilder.write(modelPath, 'clip_musc', (g) => {
    let x = layerNorm(g, pixelTokens(g, w, cfg, opts), w.lnPre, cfg.layerNormEps, 'ln_pre');

    const taken = new Map<number, string>();
    w.blocks.forEach((block, i) => {
      x = residualBlock(g, x, block, { heads: cfg.heads, eps: cfg.layerNormEps, act: cfg.act, prefix: `m${i}` }).out;
      if (opts.layers.includes(i + 1)) taken.set(i + 1, x);
    });
    const patchTokens = (t: string) => g.op('Slice', [t, g.constI64([1]), g.constI64([1 + N]), g.constI64([1])]);
    const perLayer = opts.layers.map((l) => g.op('Unsqueeze', [patchTokens(taken.get(l) as string), g.constI64([1])]));
    const tokens = perLayer.length === 1 ? perLayer[0] : g.op('Concat', perLayer, { axis: 1 });
    g.output(tokens, 'musc_tokens', 'float32', ['batch', opts.layers.length, N, width]);

    const proj = g.weight('visual_proj', transpose2d(w.proj), [width, projectionDim]);
    const clsOut = g.op('Gather', [x, g.constI64([0], [])], { axis: 1 });
    g.output(g.op('MatMul', [layerNorm(g, clsOut, w.lnPost, cfg.layerNormEps, 'ln_post'), proj]), 'image_embeds', 'float32', ['batch', projectionDim]);
    return `MuSc patch tokens ${opts.imageSize}px, blocks ${opts.layers.join(',')} (no ln_post, no projection)`;
  });
}

/** The token graph as a method graph: built and cached by the runtime (model `musc`). */
export function tokenGraphSpec(options: TokenGraphOptions): GraphSpec {
  return {
    name: MUSC_GRAPH,
    options,
    validate: (weights) => validateTokenGraphOptions(weights, options),
    build: (weights, file, context) =>
      buildTokenGraph(weights, { ...options, ...(context.positionResize && !options.positionResize ? { positionResize: context.positionResize } : {}) }, file),
  };
}
