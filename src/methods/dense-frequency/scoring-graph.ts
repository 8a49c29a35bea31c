// The branch scoring of branches.ts (frequency split, FSAM, GSCM, per-branch probabilities) as
// one ONNX graph run in the inference worker (`dense-frequency-scoring`). In JavaScript loops
// the three branches × three layers took 113–147 ms at 14×14 on vit-b-16 features; as MatMuls in
// ONNX Runtime they take a few ms. Same formulas, float32 accumulation instead of float64: the
// maps agree with branches.ts to ~1e-6 (test/methods/dense-frequency/scoring-graph.test.ts).
//
// Everything that depends on the grid or the settings is an input, so one graph serves every
// grid, width and setting:
// - the low-pass operators A_h, A_w (frequency.ts) applied as MatMuls along x, then along y;
// - FSAM's k×k neighbourhood as a banded attention: patch (y, x) attends to the (k)·w patches of
//   grid rows y−r..y+r (a MatMul per grid row), with an additive mask (0 / −1e30) that keeps
//   only its in-grid k×k neighbours. 3·N·w·D multiply-adds instead of 8·N·D, but at MatMul speed;
// - GSCM's global affinity as a [N, N] MatMul and a softmax.
// branches.ts stays the reference and serves what the graph does not (keyPool > 1, a patch with
// no neighbour) and training, which needs the intermediates.
import type { GraphSpec } from '../../clip/onnx/graph-cache.ts';
import { GraphBuilder } from '../../clip/onnx/graph-builder.ts';
import type { TensorIn, TensorOut } from '../../clip/runtime/worker-protocol.ts';
import type { LayeredFeatureGrid } from '../../imaging/plane.ts';
import { lowPassMatrix } from './frequency.ts';
import type { BranchMaps, BranchSettings, BranchText, TextPair } from './branches.ts';

export const SCORING_GRAPH = 'dense-frequency-scoring';

/** Masked-out logits: exp(−1e30 − max) is exactly 0 in float32, without −inf arithmetic. */
const MASKED = -1e30;

type TensorFeed = TensorIn & { type: 'float32'; data: Float32Array };
/** Runs the scoring graph (the worker's ctx.infer on SCORING_GRAPH, or a session in tests). */
export type ScoringInfer = (inputs: Record<string, TensorIn>) => Promise<Record<string, TensorOut>>;

/** Rows scaled to unit length; a zero row stays zero (as l2NormalizeRows). */
function unitRows(g: GraphBuilder, x: string, eps: string): string {
  const norm = g.op('Sqrt', [g.op('ReduceSumSquare', [x], { axes: [-1], keepdims: 1 })]);
  return g.op('Div', [x, g.op('Max', [norm, eps])]);
}

/** p = sigmoid(<x/|x|, diff> / T) per row (as patchProbabilities): [..., D] → [...]. */
function probabilities(g: GraphBuilder, x: string, diff: string, invT: string, eps: string): string {
  const norm = g.op('Sqrt', [g.op('ReduceSumSquare', [x], { axes: [-1], keepdims: 1 })]);
  const dot = g.op('MatMul', [x, diff]);
  const logit = g.op('Mul', [g.op('Div', [dot, g.op('Max', [norm, eps])]), invT]);
  return g.op('Squeeze', [g.op('Sigmoid', [logit]), g.constI64([-1])]);
}

export function buildScoringGraph(file: string): void {
  GraphBuilder.write(file, 'dense_frequency_scoring', (g) => {
    const x = g.input('features', 'float32', ['layers', 'h', 'w', 'dim']);
    const aw = g.input('lowpass_w', 'float32', ['w', 'w']);
    const ah = g.input('lowpass_h', 'float32', ['h', 'h']);
    const mask = g.input('fsam_mask', 'float32', ['h', 'w', 'band']);
    const rows = g.input('fsam_rows', 'int64', ['h', 'k']);
    const fsamInvTau = g.input('fsam_inv_tau', 'float32', [1]);
    const fsamBeta = g.input('fsam_beta', 'float32', [1]);
    const gscmInvTau = g.input('gscm_inv_tau', 'float32', [1]);
    const invT = g.input('inv_temperature', 'float32', [1]);
    const diffFull = g.input('text_full', 'float32', ['dim', 1]);
    const diffHigh = g.input('text_high', 'float32', ['dim', 1]);
    const diffLow = g.input('text_low', 'float32', ['dim', 1]);
    const eps = g.constF32([1e-30], [1]);
    const one = g.constF32([1], [1]);

    const shape = g.op('Shape', [x]);
    const dimL = g.op('Slice', [shape, g.constI64([0]), g.constI64([1])]);
    const dimD = g.op('Slice', [shape, g.constI64([3]), g.constI64([4])]);

    // Frequency split: along x (A_w broadcast over [L, h]), then along y on whole grid rows.
    const t = g.op('MatMul', [aw, x]);
    const rowsShape = g.op('Concat', [g.constI64([0, 0, -1])], { axis: 0 });
    const low = g.op('Reshape', [g.op('MatMul', [ah, g.op('Reshape', [t, rowsShape])]), shape]);
    const high = g.op('Sub', [x, low]);

    // FSAM: grid rows y−r..y+r of each row y gathered side by side → [L, h, k·w, D].
    const band = (v: string) => {
      // Gather(rows [h, k]) on axis 1: [L, h, k, w, D]; rows past the grid are clamped (and masked).
      const gathered = g.op('Gather', [v, rows], { axis: 1 });
      const bandShape = g.op('Concat', [dimL, g.constI64([0, -1]), dimD], { axis: 0 });
      return g.op('Reshape', [gathered, bandShape], { allowzero: 0 });
    };
    const unitHigh = unitRows(g, high, eps);
    const cos = g.op('MatMul', [unitHigh, g.op('Transpose', [band(unitHigh)], { perm: [0, 1, 3, 2] })]); // [L, h, w, k·w]
    const attention = g.op('Softmax', [g.op('Add', [g.op('Mul', [cos, fsamInvTau]), mask])], { axis: -1 });
    const localContext = g.op('MatMul', [attention, band(high)]);
    const enhanced = g.op('Sub', [g.op('Mul', [high, g.op('Add', [one, fsamBeta])]), g.op('Mul', [localContext, fsamBeta])]);

    // GSCM on [L, N, D].
    const flatShape = g.op('Concat', [dimL, g.constI64([-1]), dimD], { axis: 0 });
    const lowFlat = g.op('Reshape', [low, flatShape]);
    const unitLow = unitRows(g, lowFlat, eps);
    const affinity = g.op('MatMul', [unitLow, g.op('Transpose', [unitLow], { perm: [0, 2, 1] })]);
    const weights = g.op('Softmax', [g.op('Mul', [affinity, gscmInvTau])], { axis: -1 });
    const context = g.op('MatMul', [weights, lowFlat]);

    const flat = (v: string) => g.op('Reshape', [v, flatShape]);
    g.output(probabilities(g, flat(x), diffFull, invT, eps), 'p_full', 'float32', ['layers', 'patches']);
    g.output(probabilities(g, flat(enhanced), diffHigh, invT, eps), 'p_high', 'float32', ['layers', 'patches']);
    g.output(probabilities(g, context, diffLow, invT, eps), 'p_low', 'float32', ['layers', 'patches']);
    return 'dense-frequency branch scoring: frequency split, FSAM, GSCM, per-branch probabilities per layer';
  });
}

/** The scoring graph as a method graph (no weights: everything is an input). */
export function scoringGraphSpec(): GraphSpec {
  return { name: SCORING_GRAPH, options: { version: 2 }, build: (_weights, file) => buildScoringGraph(file) };
}

/**
 * Whether the graph computes exactly what branches.ts does for these settings: pooled GSCM keys
 * are not in the graph, and a patch without any neighbour (a 1×1 grid, k = 1 without self)
 * would get an all-masked softmax.
 */
export function graphServes(settings: BranchSettings, gridH: number, gridW: number): boolean {
  if (!settings.branches || settings.gscm.keyPool !== 1) return false;
  return settings.fsam.includeSelf || (settings.fsam.k >= 3 && gridH * gridW >= 2);
}

/** (a/|a| − n/|n|) as a [D, 1] column, as similarity.ts's textDifference. */
function textColumn(pair: TextPair, dim: number): Float32Array {
  let sn = 0;
  let sa = 0;
  for (let k = 0; k < dim; k++) {
    sn += pair.normal[k] * pair.normal[k];
    sa += pair.abnormal[k] * pair.abnormal[k];
  }
  const invN = sn > 0 ? 1 / Math.sqrt(sn) : 0;
  const invA = sa > 0 ? 1 / Math.sqrt(sa) : 0;
  const out = new Float32Array(dim);
  for (let k = 0; k < dim; k++) out[k] = pair.abnormal[k] * invA - pair.normal[k] * invN;
  return out;
}

interface Geometry {
  aw: Float32Array;
  ah: Float32Array;
  mask: Float32Array;
  rows: BigInt64Array;
  k: number;
}

const geometries = new Map<string, Geometry>();

/** Low-pass operators and FSAM's band mask for one grid and settings (cached: grids come in a few sizes). */
function geometry(h: number, w: number, cutoff: number, k: number, includeSelf: boolean): Geometry {
  const key = `${h}x${w}:${cutoff}:${k}:${includeSelf}`;
  const hit = geometries.get(key);
  if (hit) return hit;
  const r = (k - 1) >> 1;
  const bandWidth = k * w;
  const mask = new Float32Array(h * w * bandWidth).fill(MASKED);
  const rows = new BigInt64Array(k * h);
  for (let y = 0; y < h; y++) {
    for (let q = 0; q < k; q++) rows[y * k + q] = BigInt(Math.min(h - 1, Math.max(0, y + q - r)));
  }
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let q = 0; q < k; q++) {
        const yy = y + q - r;
        if (yy < 0 || yy >= h) continue;
        for (let xx = Math.max(0, x - r); xx <= Math.min(w - 1, x + r); xx++) {
          if (yy === y && xx === x && !includeSelf) continue;
          mask[(y * w + x) * bandWidth + q * w + xx] = 0;
        }
      }
    }
  }
  const made = { aw: Float32Array.from(lowPassMatrix(w, cutoff)), ah: Float32Array.from(lowPassMatrix(h, cutoff)), mask, rows, k };
  if (geometries.size >= 16) geometries.clear();
  geometries.set(key, made);
  return made;
}

/** The graph's inputs for a grid of features ([layers, h*w, dim]). */
export function scoringGraphInputs(grid: LayeredFeatureGrid, text: BranchText, settings: BranchSettings): Record<string, TensorIn> {
  const { data, layers, gridH: h, gridW: w, dim } = grid;
  const geo = geometry(h, w, settings.cutoff, settings.fsam.k, settings.fsam.includeSelf);
  const f = (values: Float32Array | number[], dims: number[]): TensorFeed => ({ type: 'float32', data: values instanceof Float32Array ? values : Float32Array.from(values), dims });
  return {
    features: f(data, [layers, h, w, dim]),
    lowpass_w: f(geo.aw, [w, w]),
    lowpass_h: f(geo.ah, [h, h]),
    fsam_mask: f(geo.mask, [h, w, geo.k * w]),
    fsam_rows: { type: 'int64', data: geo.rows, dims: [h, geo.k] },
    fsam_inv_tau: f([1 / settings.fsam.tau], [1]),
    fsam_beta: f([settings.fsam.beta], [1]),
    gscm_inv_tau: f([1 / settings.gscm.tau], [1]),
    inv_temperature: f([1 / settings.temperature], [1]),
    text_full: f(textColumn(text.full, dim), [dim, 1]),
    text_high: f(textColumn(text.high, dim), [dim, 1]),
    text_low: f(textColumn(text.low, dim), [dim, 1]),
  };
}

/** Per-layer probabilities [layers, N] → their mean over layers (float64 sums, as gridBranchMaps). */
function layerMean(values: Float32Array, layers: number, n: number): Float32Array {
  const sums = new Float64Array(n);
  for (let l = 0; l < layers; l++) for (let i = 0; i < n; i++) sums[i] += values[l * n + i];
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = sums[i] / layers;
  return out;
}

/** gridBranchMaps through the scoring graph (`infer` runs it); only for settings graphServes accepts. */
export async function graphBranchMaps(infer: ScoringInfer, grid: LayeredFeatureGrid, text: BranchText, settings: BranchSettings): Promise<BranchMaps> {
  const n = grid.gridH * grid.gridW;
  if (grid.data.length !== grid.layers * n * grid.dim) throw new RangeError(`graphBranchMaps: need [${grid.layers}, ${n}, ${grid.dim}] values`);
  const out = await infer(scoringGraphInputs(grid, text, settings));
  return {
    full: layerMean(out.p_full.data, grid.layers, n),
    high: layerMean(out.p_high.data, grid.layers, n),
    low: layerMean(out.p_low.data, grid.layers, n),
  };
}
