// The image tower as an ONNX graph: pixel_values [B, 3, S, S] → image_embeds [B, dim] and
// dense patch features [B, L, N, dim] at the requested layers, in one forward pass.
// The dense path is method.md §2: from block S on, d_l = d_{l-1} + OutProj(softmax(V Vᵀ) V)
// (or q-q + k-k attention), with V taken from the original path's LN1(x_{l-1}), no MLP.
import type { ClipWeights, ImageGraphOptions } from '../types.ts';
import { resizePositionEmbedding } from './position-embedding.ts';
import { GraphBuilder } from './graph-builder.ts';
import { attentionWeights, layerNorm, linear, mergeHeads, residualBlock, transpose2d } from './transformer-ops.ts';

export function validateImageGraphOptions(weights: ClipWeights, opts: ImageGraphOptions): void {
  const v = weights.config.vision;
  if (!Number.isInteger(opts.imageSize) || opts.imageSize < v.patchSize || opts.imageSize % v.patchSize !== 0) {
    throw new Error(`image size ${opts.imageSize} must be a positive multiple of the patch size ${v.patchSize}`);
  }
  if (opts.denseLayers.length === 0) throw new Error('at least one dense layer is needed');
  for (const l of opts.denseLayers) {
    if (!Number.isInteger(l) || l < 1 || l > v.layers) throw new Error(`dense layer ${l} is outside 1..${v.layers}`);
  }
  if (!Number.isInteger(opts.denseStart) || opts.denseStart < 1 || opts.denseStart > v.layers) {
    throw new Error(`dense start block ${opts.denseStart} is outside 1..${v.layers}`);
  }
}

export function buildImageGraph(weights: ClipWeights, opts: ImageGraphOptions, modelPath: string): void {
  validateImageGraphOptions(weights, opts);
  const { vision: cfg, projectionDim } = weights.config;
  const w = weights.vision;
  const width = cfg.width;
  const p = cfg.patchSize;
  const grid = opts.imageSize / p;
  const grid0 = cfg.imageSize / p;
  const N = grid * grid;
  const headDim = width / cfg.heads;
  const g = new GraphBuilder(modelPath, 'clip_image');
  try {
    const pixels = g.input('pixel_values', 'float32', ['batch', 3, opts.imageSize, opts.imageSize]);
    const conv = g.op('Conv', [pixels, g.weight('patch_embed', w.patchEmbed.data, w.patchEmbed.shape)], {
      kernel_shape: [p, p],
      strides: [p, p],
    });
    const patches = g.op('Transpose', [g.op('Reshape', [conv, g.constI64([0, width, N])])], { perm: [0, 2, 1] });

    // Class token broadcast to the batch: shape [B, 1, W] from the input's batch size.
    const batch = g.op('Shape', [pixels], { start: 0, end: 1 });
    const clsShape = g.op('Concat', [batch, g.constI64([1, width])], { axis: 0 });
    const cls = g.op('Expand', [g.weight('class_embed', w.classEmbed.data, [1, 1, width]), clsShape]);
    const tokens = g.op('Concat', [cls, patches], { axis: 1 });
    const pos = resizePositionEmbedding(w.posEmbed, grid0, grid, opts.positionResize ?? 'hf');
    let x = layerNorm(g, g.op('Add', [tokens, g.weight('pos_embed', pos, [1 + N, width])]), w.lnPre, cfg.layerNormEps, 'ln_pre');

    const proj = g.weight('visual_proj', transpose2d(w.proj), [width, projectionDim]);
    const project = (tokensIn: string) => g.op('MatMul', [layerNorm(g, tokensIn, w.lnPost, cfg.layerNormEps, 'ln_post'), proj]);
    const patchTokens = (t: string) => g.op('Slice', [t, g.constI64([1]), g.constI64([1 + N]), g.constI64([1])]);

    const lastDense = Math.max(...opts.denseLayers);
    const denseAt = new Map<number, string>();
    let d: string | undefined;
    w.blocks.forEach((block, i) => {
      const l = i + 1;
      const before = x;
      const { out, heads } = residualBlock(g, x, block, { heads: cfg.heads, eps: cfg.layerNormEps, act: cfg.act, prefix: `v${i}` });
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
        d = g.op('Add', [d ?? before, linear(g, mergeHeads(g, mixed, width), block.out, `v${i}_out`)]);
      }
      if (opts.denseLayers.includes(l)) denseAt.set(l, l >= opts.denseStart ? (d as string) : x);
    });

    const perLayer = opts.denseLayers.map((l) => g.op('Unsqueeze', [project(patchTokens(denseAt.get(l) as string)), g.constI64([1])]));
    const dense = perLayer.length === 1 ? perLayer[0] : g.op('Concat', perLayer, { axis: 1 });
    const clsOut = g.op('Gather', [x, g.constI64([0], [])], { axis: 1 });
    g.output(project(clsOut), 'image_embeds', 'float32', ['batch', projectionDim]);
    g.output(dense, 'dense_features', 'float32', ['batch', opts.denseLayers.length, N, projectionDim]);
    g.save(`CLIP image tower ${opts.imageSize}px, dense layers ${opts.denseLayers.join(',')} from block ${opts.denseStart} (${opts.denseAttention})`);
  } catch (err) {
    g.abandon();
    throw err;
  }
}
