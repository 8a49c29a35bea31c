// The CLIP transformer's pieces as ONNX subgraphs: layer norm, linear layers, activations,
// multi-head attention and the pre-LN residual block shared by both towers.
import type { Activation, Block, LayerNorm, Linear, Tensor32, VisionConfig, VisionWeights } from '../types.ts';
import type { GraphBuilder } from './graph-builder.ts';
import { resizePositionEmbedding, type PositionResize } from './position-embedding.ts';
import { int8MatMul, scaleRows, type LinearRole, type Numerics } from './quantize.ts';

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

/**
 * The patch grid of a square input of `imageSize` pixels: its side and its number of patches.
 * Throws unless the size is a positive multiple of the patch size (every image-side graph's rule).
 */
export function patchGrid(cfg: VisionConfig, imageSize: number): { grid: number; patches: number } {
  const p = cfg.patchSize;
  if (!Number.isInteger(imageSize) || imageSize < p || imageSize % p !== 0) {
    throw new Error(`image size ${imageSize} must be a positive multiple of the patch size ${p}`);
  }
  const grid = imageSize / p;
  return { grid, patches: grid * grid };
}

/**
 * The vision stem every image-side graph starts with: the `pixel_values` input [B, 3, S, S] →
 * conv patches (stride = kernel = patch) + class token + position embedding resized to the
 * S/patch grid by the checkpoint layout's convention (position-embedding.ts) → tokens
 * [B, 1+N, W], before ln_pre.
 */
export function pixelTokens(g: GraphBuilder, w: VisionWeights, cfg: VisionConfig, opts: { imageSize: number; positionResize?: PositionResize }): string {
  const { width, patchSize: p } = cfg;
  const { grid, patches: N } = patchGrid(cfg, opts.imageSize);
  const pixels = g.input('pixel_values', 'float32', ['batch', 3, opts.imageSize, opts.imageSize]);
  const conv = g.op('Conv', [pixels, g.weight('patch_embed', w.patchEmbed.data, w.patchEmbed.shape)], { kernel_shape: [p, p], strides: [p, p] });
  const patches = g.op('Transpose', [g.op('Reshape', [conv, g.constI64([0, width, N])])], { perm: [0, 2, 1] });
  // Class token broadcast to the batch: shape [B, 1, W] from the input's batch size.
  const batch = g.op('Shape', [pixels], { start: 0, end: 1 });
  const cls = g.op('Expand', [g.weight('class_embed', w.classEmbed.data, [1, 1, width]), g.op('Concat', [batch, g.constI64([1, width])], { axis: 0 })]);
  const pos = resizePositionEmbedding(w.posEmbed, cfg.imageSize / p, grid, opts.positionResize ?? 'hf');
  return g.op('Add', [g.op('Concat', [cls, patches], { axis: 1 }), g.weight('pos_embed', pos, [1 + N, width])]);
}

export function layerNorm(g: GraphBuilder, x: string, ln: LayerNorm, eps: number, prefix: string): string {
  const w = g.sharedWeight(ln.weight, `${prefix}_w`, () => ({ data: ln.weight.data, dims: [ln.weight.data.length] }));
  const b = g.sharedWeight(ln.bias, `${prefix}_b`, () => ({ data: ln.bias.data, dims: [ln.bias.data.length] }));
  return g.op('LayerNormalization', [x, w, b], { axis: -1, epsilon: { float: eps } });
}

/** Identity objects for a LayerNorm's smoothed gain and bias (int8 graphs). */
const smoothedKeys = new WeakMap<LayerNorm, { weight: object; bias: object }>();

/**
 * A LayerNorm that feeds a linear layer: with int8 smoothing its output is divided per channel
 * by s (gain and bias divided; the linear's rows get multiplied, see quantize.ts).
 */
function inputLayerNorm(g: GraphBuilder, x: string, ln: LayerNorm, eps: number, prefix: string, numerics: Numerics | undefined): string {
  const s = numerics?.int8?.smoothing.get(ln);
  if (!s) return layerNorm(g, x, ln, eps, prefix);
  let keys = smoothedKeys.get(ln);
  if (!keys) smoothedKeys.set(ln, (keys = { weight: {}, bias: {} }));
  const div = (t: Float32Array) => t.map((v, i) => v / s[i]);
  const w = g.sharedWeight(keys.weight, `${prefix}_ws`, () => ({ data: div(ln.weight.data), dims: [s.length] }));
  const b = g.sharedWeight(keys.bias, `${prefix}_bs`, () => ({ data: div(ln.bias.data), dims: [s.length] }));
  return g.op('LayerNormalization', [x, w, b], { axis: -1, epsilon: { float: eps } });
}

/** Identity objects for int8 weights, apart from the fp32 ones (a weight may be both in one process). */
const int8Keys = new WeakMap<object, object>();
function int8Key(source: object): object {
  let k = int8Keys.get(source);
  if (!k) int8Keys.set(source, (k = {}));
  return k;
}

/**
 * x · W for W given as [in, out] (made lazily, once per `source` in a graph); int8 when the
 * numerics say so; reported to a calibration probe by `source`.
 */
function matmulWeight(g: GraphBuilder, x: string, source: object, prefix: string, make: () => Float32Array, K: number, N: number, numerics: Numerics | undefined, role: LinearRole, bias?: () => string): string {
  numerics?.probeInput?.(source, x);
  if (numerics?.int8 && !numerics.int8.fp32?.includes(role)) {
    return int8MatMul(g, x, int8Key(source), prefix, () => ({ w: make(), K, N }), numerics.int8.outliers?.get(source), numerics.int8.weights, bias?.());
  }
  const y = g.op('MatMul', [x, g.sharedWeight(source, `${prefix}_w`, () => ({ data: make(), dims: [K, N] }))]);
  return bias ? g.op('Add', [y, bias()]) : y;
}

/** `rowScale`: the smoothing of x (quantize.ts), multiplied into W's rows — also when W stays fp32. */
export function linear(g: GraphBuilder, x: string, lin: Linear, prefix: string, role: LinearRole, numerics?: Numerics, rowScale?: Float32Array): string {
  const [out, inp] = lin.weight.shape;
  const make = () => (rowScale ? scaleRows(transpose2d(lin.weight), rowScale, inp, out) : transpose2d(lin.weight));
  const bias = lin.bias;
  const b = bias ? () => g.sharedWeight(bias, `${prefix}_b`, () => ({ data: bias.data, dims: [out] })) : undefined;
  return matmulWeight(g, x, lin.weight, prefix, make, inp, out, numerics, role, b);
}

export function activation(g: GraphBuilder, x: string, act: Activation): string {
  if (act === 'quick_gelu') {
    // x * sigmoid(1.702 x), as OpenAI's CLIP.
    return g.op('Mul', [x, g.op('Sigmoid', [g.op('Mul', [x, g.constF32([1.702])])])]);
  }
  // Exact (erf) GELU: (x (1 + erf(x / √2))) · 0.5, written in the Div form ONNX Runtime's
  // GeluFusion matches, so with the bias Add before it the CPU runs one BiasGelu kernel.
  const erf = g.op('Erf', [g.op('Div', [x, g.constF32([Math.SQRT2])])]);
  return g.op('Mul', [g.op('Mul', [x, g.op('Add', [erf, g.constF32([1])])]), g.constF32([0.5])]);
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

/** The identity of a block's fused q/k/v weight (what calibration and int8 numerics key it by). */
export function qkvWeightKey(block: Block): object {
  let keys = fusedQkvKeys.get(block);
  if (!keys) fusedQkvKeys.set(block, (keys = { weight: {}, bias: {} }));
  return keys.weight;
}

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

export function qkvHeads(g: GraphBuilder, x: string, block: Block, heads: number, prefix: string, numerics?: Numerics, rowScale?: Float32Array): Heads {
  const width = block.q.weight.shape[1];
  const headDim = width / heads;
  // One [W, 3W] matmul instead of three: fewer, larger kernels run faster on CPU.
  qkvWeightKey(block);
  const keys = fusedQkvKeys.get(block) as { weight: object; bias: object };
  let fused: { weight: Float32Array; bias: Float32Array } | undefined;
  const made = () => (fused ??= fusedQkv(block, width));
  const b = () => g.sharedWeight(keys.bias, `${prefix}_qkv_b`, () => ({ data: made().bias, dims: [3 * width] }));
  const weight = () => (rowScale ? scaleRows(made().weight, rowScale, width, 3 * width) : made().weight);
  const y = matmulWeight(g, x, keys.weight, `${prefix}_qkv`, weight, width, 3 * width, numerics, 'qkv', b);
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

export interface BlockOptions {
  heads: number;
  eps: number;
  act: Activation;
  mask?: string;
  prefix: string;
  numerics?: Numerics;
  /**
   * Only the class token (position 0) goes on past the attention's keys and values: `out` is
   * [B, 1, W]. Exact for a last block whose patch outputs nobody reads (the keys and values,
   * and the heads returned, still cover every token).
   */
  classOnly?: boolean;
}

/** Pre-LN residual block: x + attn(LN1 x); then + MLP(LN2 x). Returns the heads for the dense path. */
export function residualBlock(g: GraphBuilder, x: string, block: Block, opts: BlockOptions): BlockOutput {
  const width = block.q.weight.shape[1];
  const headDim = width / opts.heads;
  const { numerics } = opts;
  const s1 = numerics?.int8?.smoothing.get(block.ln1);
  const s2 = numerics?.int8?.smoothing.get(block.ln2);
  const h = inputLayerNorm(g, x, block.ln1, opts.eps, `${opts.prefix}_ln1`, numerics);
  const heads = qkvHeads(g, h, block, opts.heads, opts.prefix, numerics, s1);
  const first = (t: string, axis: number) => g.op('Slice', [t, g.constI64([0]), g.constI64([1]), g.constI64([axis])]);
  const q = opts.classOnly ? first(heads.q, 2) : heads.q;
  const residual = opts.classOnly ? first(x, 1) : x;
  const weights = attentionWeights(g, q, heads.k, 1 / Math.sqrt(headDim), opts.mask);
  const attn = linear(g, mergeHeads(g, g.op('MatMul', [weights, heads.v]), width), block.out, `${opts.prefix}_out`, 'out', numerics);
  const x1 = g.op('Add', [residual, attn]);
  const h2 = inputLayerNorm(g, x1, block.ln2, opts.eps, `${opts.prefix}_ln2`, numerics);
  const hidden = activation(g, linear(g, h2, block.fc1, `${opts.prefix}_fc1`, 'fc1', numerics, s2), opts.act);
  const mlp = linear(g, hidden, block.fc2, `${opts.prefix}_fc2`, 'fc2', numerics);
  return { out: g.op('Add', [x1, mlp]), heads };
}
