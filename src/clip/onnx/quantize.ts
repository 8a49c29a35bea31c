// int8 linear layers for the graph builder: per-output-channel symmetric int8 weights and
// dynamic per-tensor int8 activations (DynamicQuantizeLinear → MatMulInteger → scale), the
// pattern ONNX Runtime fuses into DynamicQuantizeMatMul. Three weight formats (int8-kernel.ts
// picks one per machine): 's8', full-range int8 for the u8×s8 kernel, exact where the CPU has
// VNNI (int32 accumulation); 'u8', weights stored shifted by +128 with zero point 128 for the
// u8×u8 kernel, because the AVX2 (no VNNI) u8×s8 kernel sums pairs of products in int16 and
// saturates on full-range int8 weights; 's7', weights in ±63, where u8×s8 pairs cannot saturate
// (2·255·63 < 2^15), for that kernel's speed on AVX2 at one bit less of weight.
//
// Per-tensor activation scales break on the few activation channels real CLIP towers have far
// above the rest (one channel ×30 takes the scale of all). SmoothQuant-style migration fixes
// that for the LayerNorm outputs (the inputs of the fused qkv and of fc1): per input channel j,
// s_j = sqrt(max|x_j| / max_n |W_jn|), the LayerNorm's gain and bias are divided by s and the
// weight rows multiplied by s — exact in real arithmetic — so the activation's outlier channels
// shrink and the weights absorb them where per-column scales have room. max|x_j| is calibrated
// at build time (int8-calibration.ts).
import type { LayerNorm } from '../types.ts';
import type { GraphBuilder } from './graph-builder.ts';

export type Precision = 'fp32' | 'int8';

export const PRECISIONS: readonly Precision[] = ['fp32', 'int8'];

/** How a graph computes its blocks' linear layers. */
export interface Numerics {
  /** int8 linear layers; `smoothing` holds each LayerNorm's per-channel divisor (from calibration). */
  int8?: {
    smoothing: WeakMap<LayerNorm, Float32Array>;
    /** Weight storage: 'u8' (default) uint8 q+128 in 1..255, 's8' int8 in ±127, 's7' int8 in ±63 (see WeightFormat). */
    weights?: WeightFormat;
    /** Input channels computed in fp32 beside the int8 product, by weight (outliers from calibration). */
    outliers?: WeakMap<object, Int32Array>;
    /** Linear layers of each block kept in fp32 (the sensitive ones, when there are). */
    fp32?: readonly LinearRole[];
  };
  /** Calibration: told of every linear layer's input [.., K], by the weight's identity. */
  probeInput?: (weight: object, value: string) => void;
}

/**
 * 's8': signed 8-bit weights in ±127 for the u8 × s8 kernel; exact only with VNNI (int32
 * accumulation). 's7': signed weights in ±63 (7 bits), so u8 × s8 pairs stay under the int16
 * saturation of the AVX2 kernel; the u8 × s8 speed at twice the weight rounding error. 'u8':
 * 8-bit weights as uint8 (q + 128), exact sums in the u8 × u8 kernel everywhere, at its lower speed.
 */
export type WeightFormat = 's8' | 's7' | 'u8';

export const WEIGHT_FORMATS: readonly WeightFormat[] = ['u8', 's8', 's7'];

/** A block's linear layers: fused q/k/v, attention output, MLP in and out. */
export type LinearRole = 'qkv' | 'out' | 'fc1' | 'fc2';

/** SmoothQuant's migration strength: half of each outlier's range moves into the weights. */
const ALPHA = 0.5;

/** Per-input-row divisors s (length K) for activations with channel maxima `act` feeding `w` [K, N]. */
export function smoothingScales(act: Float32Array, w: Float32Array, K: number, N: number): Float32Array {
  const s = new Float32Array(K);
  for (let k = 0; k < K; k++) {
    let wmax = 0;
    const row = k * N;
    for (let n = 0; n < N; n++) wmax = Math.max(wmax, Math.abs(w[row + n]));
    const a = Math.max(act[k], 1e-5);
    s[k] = wmax > 0 ? Math.max(a ** ALPHA / wmax ** (1 - ALPHA), 1e-5) : 1;
  }
  return s;
}

/** Per-column symmetric int8 of w [K, N] (row-major, [in, out]), stored as uint8 (q + 128), and the column scales. */
export function quantizeColumns(w: Float32Array, K: number, N: number): { q: Uint8Array; scale: Float32Array } {
  const { q, scale } = quantizeColumnsSigned(w, K, N, 127);
  return { q: Uint8Array.from(q, (v) => v + 128), scale };
}

/** Per-column symmetric quantization of w [K, N] to integers in ±levels, and the column scales. */
export function quantizeColumnsSigned(w: Float32Array, K: number, N: number, levels: number): { q: Int8Array; scale: Float32Array } {
  const scale = new Float32Array(N);
  for (let k = 0; k < K; k++) {
    const row = k * N;
    for (let n = 0; n < N; n++) scale[n] = Math.max(scale[n], Math.abs(w[row + n]));
  }
  for (let n = 0; n < N; n++) scale[n] = scale[n] > 0 ? scale[n] / levels : 1;
  const q = new Int8Array(K * N);
  for (let k = 0; k < K; k++) {
    const row = k * N;
    for (let n = 0; n < N; n++) q[row + n] = Math.max(-levels, Math.min(levels, Math.round(w[row + n] / scale[n])));
  }
  return { q, scale };
}

/**
 * x [.., K] · W [K, N] (+ `bias`) in int8, W made lazily (once per `key` in a graph, so a block
 * run on several paths stores its weights once).
 */
export function int8MatMul(
  g: GraphBuilder,
  x: string,
  key: object,
  prefix: string,
  make: () => { w: Float32Array; K: number; N: number },
  outliers?: Int32Array,
  format: WeightFormat = 'u8',
  bias?: string,
): string {
  const parts = g.sharedValue(key, () => {
    const { w, K, N } = make();
    let side: { idx: string; mask: string; w: string } | undefined;
    let wInt = w;
    if (outliers?.length) {
      // The outlier rows leave the int8 matrix (zeroed, so they do not widen its column
      // scales) for a small fp32 one; the input's outlier channels are zeroed to match.
      wInt = w.slice();
      const rows = new Float32Array(outliers.length * N);
      const mask = new Float32Array(K).fill(1);
      outliers.forEach((k, i) => {
        rows.set(w.subarray(k * N, (k + 1) * N), i * N);
        wInt.fill(0, k * N, (k + 1) * N);
        mask[k] = 0;
      });
      side = { idx: g.constI64([...outliers]), mask: g.weight(`${prefix}_mask`, mask, [K]), w: g.weight(`${prefix}_wo`, rows, [outliers.length, N]) };
    }
    if (format === 'u8') {
      const { q, scale } = quantizeColumns(wInt, K, N);
      return { wq: g.weightU8(`${prefix}_wq`, q, [K, N]), ws: g.weight(`${prefix}_ws`, scale, [N]), zp: g.constU8([128]), side };
    }
    const { q, scale } = quantizeColumnsSigned(wInt, K, N, format === 's8' ? 127 : 63);
    return { wq: g.weightI8(`${prefix}_wq`, q, [K, N]), ws: g.weight(`${prefix}_ws`, scale, [N]), zp: g.constI8([0]), side };
  });
  const { wq, ws, zp, side } = parts;
  const xi = side ? g.op('Mul', [x, side.mask]) : x;
  const [xq, xs, xz] = g.opN('DynamicQuantizeLinear', [xi], 3);
  const y = g.op('MatMulInteger', [xq, wq, xz, zp]);
  const scaled = g.op('Mul', [g.op('Cast', [y], { to: 1 }), g.op('Mul', [xs, ws])]);
  // The bias straight after the scale, where ONNX Runtime folds it into DynamicQuantizeMatMul
  // (after the outlier Add it stays a separate pass over the output).
  const yInt = bias ? g.op('Add', [scaled, bias]) : scaled;
  if (!side) return yInt;
  return g.op('Add', [yInt, g.op('MatMul', [g.op('Gather', [x, side.idx], { axis: -1 }), side.w])]);
}

/** Input channels whose calibrated max |x| is over `ratio` × the median channel's (at most `limit`, largest first). */
export function outlierChannelsOf(maxima: Float32Array, ratio = 6, limit = Math.max(4, Math.ceil(maxima.length / 64))): Int32Array {
  const sorted = Float32Array.from(maxima).sort();
  const median = sorted[sorted.length >> 1];
  const idx = Array.from(maxima.keys())
    .filter((k) => maxima[k] > ratio * median)
    .sort((a, b) => maxima[b] - maxima[a])
    .slice(0, limit)
    .sort((a, b) => a - b);
  return Int32Array.from(idx);
}

/** w [K, N] with row k multiplied by s[k]. */
export function scaleRows(w: Float32Array, s: Float32Array, K: number, N: number): Float32Array {
  const out = new Float32Array(w.length);
  for (let k = 0; k < K; k++) {
    const row = k * N;
    for (let n = 0; n < N; n++) out[row + n] = w[row + n] * s[k];
  }
  return out;
}

/** Per-channel max |x| of a value [.., K], as a [K] output (calibration graphs). */
export function channelAbsMax(g: GraphBuilder, x: string, rank: number): string {
  return g.op('ReduceMax', [g.op('Abs', [x])], { axes: Array.from({ length: rank - 1 }, (_, i) => i), keepdims: 0 });
}
