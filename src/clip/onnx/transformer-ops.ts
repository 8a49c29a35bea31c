// The CLIP transformer's pieces as ONNX subgraphs: layer norm, linear layers, activations,
// multi-head attention and the pre-LN residual block shared by both towers.
import type { Activation, Block, LayerNorm, Linear, Tensor32 } from '../types.ts';
import type { GraphBuilder } from './graph-builder.ts';

/** [rows, cols] → [cols, rows]; ONNX MatMul wants Linear weights as [in, out]. */
export function transpose2d(t: Tensor32): Float32Array {
  const [rows, cols] = t.shape;
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    for (let c = 0; c < cols; c++) out[c * rows + r] = t.data[base + c];
  }
  return out;
}

export function layerNorm(g: GraphBuilder, x: string, ln: LayerNorm, eps: number, prefix: string): string {
  const w = g.sharedWeight(ln.weight, `${prefix}_w`, () => ({ data: ln.weight.data, dims: [ln.weight.data.length] }));
  const b = g.sharedWeight(ln.bias, `${prefix}_b`, () => ({ data: ln.bias.data, dims: [ln.bias.data.length] }));
  return g.op('LayerNormalization', [x, w, b], { axis: -1, epsilon: { float: eps } });
}

export function linear(g: GraphBuilder, x: string, lin: Linear, prefix: string): string {
  const [out, inp] = lin.weight.shape;
  const w = g.sharedWeight(lin.weight, `${prefix}_w`, () => ({ data: transpose2d(lin.weight), dims: [inp, out] }));
  const y = g.op('MatMul', [x, w]);
  if (!lin.bias) return y;
  const bias = lin.bias;
  return g.op('Add', [y, g.sharedWeight(bias, `${prefix}_b`, () => ({ data: bias.data, dims: [out] }))]);
}

export function activation(g: GraphBuilder, x: string, act: Activation): string {
  if (act === 'quick_gelu') {
    // x * sigmoid(1.702 x), as OpenAI's CLIP.
    return g.op('Mul', [x, g.op('Sigmoid', [g.op('Mul', [x, g.constF32([1.702])])])]);
  }
  // Exact (erf) GELU: 0.5 x (1 + erf(x / sqrt 2)).
  const erf = g.op('Erf', [g.op('Mul', [x, g.constF32([Math.SQRT1_2])])]);
  return g.op('Mul', [g.op('Mul', [x, g.constF32([0.5])]), g.op('Add', [erf, g.constF32([1])])]);
}

/** Query, key and value heads [B, H, T, hd] from one fused projection. */
export interface Heads {
  q: string;
  k: string;
  v: string;
}

function splitHeads(g: GraphBuilder, x: string, heads: number, headDim: number): string {
  const r = g.op('Reshape', [x, g.constI64([0, 0, heads, headDim])]);
  return g.op('Transpose', [r], { perm: [0, 2, 1, 3] });
}

export function mergeHeads(g: GraphBuilder, x: string, width: number): string {
  const t = g.op('Transpose', [x], { perm: [0, 2, 1, 3] });
  return g.op('Reshape', [t, g.constI64([0, 0, width])]);
}

/** Identity objects for a block's fused q/k/v tensors, so a graph that runs a block several times stores them once. */
const fusedQkvKeys = new WeakMap<Block, { weight: object; bias: object }>();

function fusedQkv(block: Block, width: number): { weight: Float32Array; bias: Float32Array } {
  const weight = new Float32Array(width * 3 * width);
  const bias = new Float32Array(3 * width);
  [block.q, block.k, block.v].forEach((lin, part) => {
    const t = transpose2d(lin.weight);
    for (let r = 0; r < width; r++) weight.set(t.subarray(r * width, (r + 1) * width), r * 3 * width + part * width);
    if (lin.bias) bias.set(lin.bias.data, part * width);
  });
  return { weight, bias };
}

export function qkvHeads(g: GraphBuilder, x: string, block: Block, heads: number, prefix: string): Heads {
  const width = block.q.weight.shape[1];
  const headDim = width / heads;
  // One [W, 3W] matmul instead of three: fewer, larger kernels run faster on CPU.
  let keys = fusedQkvKeys.get(block);
  if (!keys) fusedQkvKeys.set(block, (keys = { weight: {}, bias: {} }));
  let fused: { weight: Float32Array; bias: Float32Array } | undefined;
  const made = () => (fused ??= fusedQkv(block, width));
  const w = g.sharedWeight(keys.weight, `${prefix}_qkv_w`, () => ({ data: made().weight, dims: [width, 3 * width] }));
  const b = g.sharedWeight(keys.bias, `${prefix}_qkv_b`, () => ({ data: made().bias, dims: [3 * width] }));
  const y = g.op('Add', [g.op('MatMul', [x, w]), b]);
  const [q, k, v] = g.opN('Split', [y], 3, { axis: -1 });
  return { q: splitHeads(g, q, heads, headDim), k: splitHeads(g, k, heads, headDim), v: splitHeads(g, v, heads, headDim) };
}

/** softmax(a bᵀ · scale) per head; `mask` is added to the logits when given. */
export function attentionWeights(g: GraphBuilder, a: string, b: string, scale: number, mask?: string): string {
  const bt = g.op('Transpose', [b], { perm: [0, 1, 3, 2] });
  let logits = g.op('MatMul', [g.op('Mul', [a, g.constF32([scale])]), bt]);
  if (mask) logits = g.op('Add', [logits, mask]);
  return g.op('Softmax', [logits], { axis: -1 });
}

export interface BlockOutput {
  out: string;
  heads: Heads;
}

/** Pre-LN residual block: x + attn(LN1 x); then + MLP(LN2 x). Returns the heads for the dense path. */
export function residualBlock(
  g: GraphBuilder,
  x: string,
  block: Block,
  opts: { heads: number; eps: number; act: Activation; mask?: string; prefix: string },
): BlockOutput {
  const width = block.q.weight.shape[1];
  const headDim = width / opts.heads;
  const h = layerNorm(g, x, block.ln1, opts.eps, `${opts.prefix}_ln1`);
  const heads = qkvHeads(g, h, block, opts.heads, opts.prefix);
  const weights = attentionWeights(g, heads.q, heads.k, 1 / Math.sqrt(headDim), opts.mask);
  const attn = linear(g, mergeHeads(g, g.op('MatMul', [weights, heads.v]), width), block.out, `${opts.prefix}_out`);
  const x1 = g.op('Add', [x, attn]);
  const h2 = layerNorm(g, x1, block.ln2, opts.eps, `${opts.prefix}_ln2`);
  const mlp = linear(g, activation(g, linear(g, h2, block.fc1, `${opts.prefix}_fc1`), opts.act), block.fc2, `${opts.prefix}_fc2`);
  return { out: g.op('Add', [x1, mlp]), heads };
}
