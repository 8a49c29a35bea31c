// The image tower as an ONNX graph: pixel_values [B, 3, S, S] → image_embeds [B, dim] and
// dense patch features [B, L, N, dim] at the requested layers, in one forward pass.
// The dense path is method.md §2: from block S on, d_l = d_{l-1} + OutProj(softmax(V Vᵀ) V)
// (or q-q + k-k attention), with V taken from the original path's LN1(x_{l-1}), no MLP.
import type { ClipWeights, ImageGraphOptions } from '../types.ts';
import { GraphBuilder } from './graph-builder.ts';
import type { Numerics } from './quantize.ts';
import { attentionWeights, layerNorm, linear, mergeHeads, patchGrid, pixelTokens, residualBlock, transpose2d } from './transformer-ops.ts';

export function validateImageGraphOptions(weights: ClipWeights, opts: ImageGraphOptions): void {
  const v = weights.config.vision;
  patchGrid(v, opts.imageSize);
  if (opts.denseLayers.length === 0) throw new Error('at least one dense layer is needed');
  for (const l of opts.denseLayers) {
    if (!Number.isInteger(l) || l < 1 || l > v.layers) throw new Error(`dense layer ${l} is outside 1..${v.layers}`);
  }
  if (!Number.isInteger(opts.denseStart) || opts.denseStart < 1 || opts.denseStart > v.layers) {
    throw new Error(`dense start block ${opts.denseStart} is outside 1..${v.layers}`);
  }
}

/**
 * Whether the last block's patch outputs are read: only when the last layer is a dense layer
 * taken from the original path (before the dense path starts). Otherwise the last block runs
 * for the class token alone (its keys and values still cover every token).
 */
export function lastBlockPatchesUsed(opts: ImageGraphOptions, layers: number): boolean {
  return opts.denseLayers.includes(layers) && layers < opts.denseStart;
}

/** How a graph is built beyond its options (int8 builds and calibration). */
export interface GraphBuildExtras {
  /** int8 linear layers or calibration probes (quantize.ts). */
  numerics?: Numerics;
  /** Adds outputs before the graph is saved (a calibration graph's probes). */
  extraOutputs?: (g: GraphBuilder) => void;
  /** Runs the last block on every token even when its patch outputs are unused (calibration sees them all). */
  fullLastBlock?: boolean;
}

export function buildImageGraph(weights: ClipWeights, opts: ImageGraphOptions, modelPath: string, extras: GraphBuildExtras = {}): void {
  const { numerics, extraOutputs } = extras;
  validateImageGraphOptions(weights, opts);
  const { vision: cfg, projectionDim } = weights.config;
  const w = weights.vision;
  const width = cfg.width;
  const N = patchGrid(cfg, opts.imageSize).patches;
  const headDim = width / cfg.heads;
  GraphBuilder.write(modelPath, 'clip_image', (g) => {
    let x = layerNorm(g, pixelTokens(g, w, cfg, opts), w.lnPre, cfg.layerNormEps, 'ln_pre');

    const proj = g.weight('visual_proj', transpose2d(w.proj), [width, projectionDim]);
    const project = (tokensIn: string) => g.op('MatMul', [layerNorm(g, tokensIn, w.lnPost, cfg.layerNormEps, 'ln_post'), proj]);
    const patchTokens = (t: string) => g.op('Slice', [t, g.constI64([1]), g.constI64([1 + N]), g.constI64([1])]);

    const lastDense = Math.max(...opts.denseLayers);
    const classOnlyLast = !extras.fullLastBlock && !lastBlockPatchesUsed(opts, cfg.layers);
    const denseAt = new Map<number, string>();
    let d: string | undefined;
    w.blocks.forEach((block, i) => {
      const l = i + 1;
      const before = x;
      const classOnly = classOnlyLast && l === cfg.layers;
      const { out, heads } = residualBlock(g, x, block, { heads: cfg.heads, eps: cfg.layerNormEps, act: cfg.act, prefix: `v${i}`, numerics, classOnly });
      x = out;
      if (l >= opts.denseStart && l <= lastDense) {
        const scale = 1 / Math.sqrt(headDim);
        let mixed: string;
        if (opts.denseAttention === 'vv') {
          mixed = g.op('MatMul', [attentionWeights(g, heads.v, heads.v, scale), heads.v]);
        } else {
          const a = g.op('Add', [attentionWeights(g, heads.q, heads.q, scale), attentionWeights(g, heads.k, heads.k, scale)]);
          mixed = g.op('MatMul', [a, heads.v]);
        }
        d = g.op('Add', [d ?? before, linear(g, mergeHeads(g, mixed, width), block.out, `v${i}_out`, 'out', numerics)]);
      }
      if (opts.denseLayers.includes(l)) denseAt.set(l, l >= opts.denseStart ? (d as string) : x);
    });

    const perLayer = opts.denseLayers.map((l) => g.op('Unsqueeze', [project(patchTokens(denseAt.get(l) as string)), g.constI64([1])]));
    const dense = perLayer.length === 1 ? perLayer[0] : g.op('Concat', perLayer, { axis: 1 });
    const clsOut = g.op('Gather', [x, g.constI64([0], [])], { axis: 1 });
    g.output(project(clsOut), 'image_embeds', 'float32', ['batch', projectionDim]);
    g.output(dense, 'dense_features', 'float32', ['batch', opts.denseLayers.length, N, projectionDim]);
    extraOutputs?.(g);
    const precision = numerics?.int8 ? ', int8 linear layers' : '';
    return `CLIP image tower ${opts.imageSize}px, dense layers ${opts.denseLayers.join(',')} from block ${opts.denseStart} (${opts.denseAttention})${precision}`;
  });
}
