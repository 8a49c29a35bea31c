// The text tower as an ONNX graph: input_ids [B, L] (int64, L ≤ context length) → text_embeds
// [B, dim]. L is free: attention is causal and pooling reads the end-of-text position, so ids
// cut just after the batch's last end-of-text token give the same embeddings as the full 77
// (prompts are ~15 tokens long: encoding them costs a fifth).
import type { ClipWeights } from '../types.ts';
import { GraphBuilder } from './graph-builder.ts';
import type { Numerics } from './quantize.ts';
import { layerNorm, residualBlock, transpose2d } from './transformer-ops.ts';

/** `numerics`: int8 linear layers or calibration probes (quantize.ts), as the image graph. */
export function buildTextGraph(weights: ClipWeights, modelPath: string, numerics?: Numerics, extraOutputs?: (g: GraphBuilder) => void): void {
  const { text: cfg, projectionDim } = weights.config;
  const w = weights.text;
  const T = cfg.contextLength;
  GraphBuilder.write(modelPath, 'clip_text', (g) => {
    const ids = g.input('input_ids', 'int64', ['batch', 'sequence']);
    const tok = g.op('Gather', [g.weight('token_embed', w.tokenEmbed.data, w.tokenEmbed.shape), ids], { axis: 0 });
    // L as a one-element tensor; position embeddings and the mask are cut to L.
    const L = g.op('Slice', [g.op('Shape', [ids]), g.constI64([1]), g.constI64([2])]);
    const posFull = g.weight('pos_embed', w.posEmbed.data.subarray(0, T * cfg.width), [T, cfg.width]);
    const pos = g.op('Slice', [posFull, g.constI64([0]), L, g.constI64([0])]);
    let x = g.op('Add', [tok, pos]);

    // Causal mask: a token sees itself and the tokens before it.
    const mask = new Float32Array(T * T);
    for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) mask[i * T + j] = -1e9;
    const maskFull = g.weight('causal_mask', mask, [T, T]);
    const maskName = g.op('Slice', [maskFull, g.constI64([0, 0]), g.op('Concat', [L, L], { axis: 0 }), g.constI64([0, 1])]);

    w.blocks.forEach((block, i) => {
      x = residualBlock(g, x, block, { heads: cfg.heads, eps: cfg.layerNormEps, act: cfg.act, mask: maskName, prefix: `t${i}`, numerics }).out;
    });
    x = layerNorm(g, x, w.lnFinal, cfg.layerNormEps, 't_ln_final');

    // Pool at the first position of the highest id (the end-of-text token), as CLIP does.
    // ArgMax runs on a float copy: ids < 2^24 are exact, and float ArgMax is supported everywhere.
    const eot = g.op('ArgMax', [g.op('Cast', [ids], { to: 1 })], { axis: 1, keepdims: 0, select_last_index: 0 });
    const oneHot = g.op('OneHot', [eot, L, g.constF32([0, 1], [2])], { axis: -1 });
    const pooled = g.op('MatMul', [g.op('Unsqueeze', [oneHot, g.constI64([1])]), x]);
    const flat = g.op('Reshape', [pooled, g.constI64([-1, cfg.width])]);
    const proj = g.weight('text_proj', transpose2d(w.proj), [cfg.width, projectionDim]);
    g.output(g.op('MatMul', [flat, proj]), 'text_embeds', 'float32', ['batch', projectionDim]);
    extraOutputs?.(g);
    return `CLIP text tower${numerics?.int8 ? ', int8 linear layers' : ''}`;
  });
}
