// The text tower as an ONNX graph: input_ids [B, T] (int64) → text_embeds [B, dim].
import type { ClipWeights } from '../types.ts';
import { GraphBuilder } from './graph-builder.ts';
import { layerNorm, residualBlock, transpose2d } from './transformer-ops.ts';

export function buildTextGraph(weights: ClipWeights, modelPath: string): void {
  const { text: cfg, projectionDim } = weights.config;
  const w = weights.text;
  const T = cfg.contextLength;
  const g = new GraphBuilder(modelPath, 'clip_text');
  try {
    const ids = g.input('input_ids', 'int64', ['batch', T]);
    const tok = g.op('Gather', [g.weight('token_embed', w.tokenEmbed.data, w.tokenEmbed.shape), ids], { axis: 0 });
    const pos = g.weight('pos_embed', w.posEmbed.data.subarray(0, T * cfg.width), [T, cfg.width]);
    let x = g.op('Add', [tok, pos]);

    // Causal mask: a token sees itself and the tokens before it.
    const mask = new Float32Array(T * T);
    for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) mask[i * T + j] = -1e9;
    const maskName = g.weight('causal_mask', mask, [T, T]);

    w.blocks.forEach((block, i) => {
      x = residualBlock(g, x, block, { heads: cfg.heads, eps: cfg.layerNormEps, act: cfg.act, mask: maskName, prefix: `t${i}` }).out;
    });
    x = layerNorm(g, x, w.lnFinal, cfg.layerNormEps, 't_ln_final');

    // Pool at the first position of the highest id (the end-of-text token), as CLIP does.
    // ArgMax runs on a float copy: ids < 2^24 are exact, and float ArgMax is supported everywhere.
    const eot = g.op('ArgMax', [g.op('Cast', [ids], { to: 1 })], { axis: 1, keepdims: 0, select_last_index: 0 });
    const oneHot = g.op('OneHot', [eot, g.constI64([T], []), g.constF32([0, 1], [2])], { axis: -1 });
    const pooled = g.op('MatMul', [g.op('Unsqueeze', [oneHot, g.constI64([1])]), x]);
    const flat = g.op('Reshape', [pooled, g.constI64([-1, cfg.width])]);
    const proj = g.weight('text_proj', transpose2d(w.proj), [cfg.width, projectionDim]);
    g.output(g.op('MatMul', [flat, proj]), 'text_embeds', 'float32', ['batch', projectionDim]);
    g.save('CLIP text tower');
  } catch (err) {
    g.abandon();
    throw err;
  }
}
