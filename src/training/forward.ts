// The training forward pass: the scoring code's own functions (patchProbabilities, fsam, gscm,
// fuseMaps, resizeBilinear) called layer by layer as multiLayerBranchMaps and scoreImage call
// them, keeping the intermediates the backward pass needs. Nothing here re-implements scoring;
// test/training/forward.test.ts checks the maps equal scoreImage's grid maps bit for bit.
import type { BranchText } from '../methods/dense-frequency/branches.ts';
import { averagePoolGrid, gscm } from '../methods/dense-frequency/gscm.ts';
import { fsam, type FsamTrace } from '../methods/dense-frequency/fsam.ts';
import { fuseMaps } from '../methods/dense-frequency/fusion.ts';
import type { ScoringSettings } from '../methods/dense-frequency/pipeline.ts';
import { plane } from '../imaging/plane.ts';
import { resizeBilinear } from '../imaging/resample-maps.ts';
import { imageProbability, patchProbabilities } from '../scoring/similarity.ts';
import type { TrainingSample } from './sample.ts';

export interface LayerState {
  /** Per-patch probabilities of the three branches at this layer [N]. */
  pFull: Float32Array;
  pHigh: Float32Array;
  pLow: Float32Array;
  /** FSAM output H' and its attention. */
  enhanced: Float32Array;
  trace: FsamTrace;
  /** GSCM output L', its affinity W [N, keys] and the keys it attended to. */
  context: Float32Array;
  affinity: Float32Array;
  keys: Float32Array;
  keyCount: number;
}

export interface ForwardResult {
  layers: LayerState[];
  /** Branch maps averaged over layers [N], as multiLayerBranchMaps returns them. */
  maps: { full: Float32Array; high: Float32Array; low: Float32Array };
  /** fuseMaps of the branch maps [N]. */
  fused: Float32Array;
  /** The fused map upsampled bilinearly to maskSize × maskSize: what the loss sees. */
  upsampled: Float32Array;
  pImage: number;
}

function layerForward(sample: TrainingSample, l: number, text: BranchText, s: ScoringSettings): LayerState {
  const { gridH: h, gridW: w, dim } = sample;
  const n = h * w;
  const range = [l * n * dim, (l + 1) * n * dim] as const;
  const t = s.temperature;
  const pFull = patchProbabilities(sample.dense.subarray(...range), n, dim, text.full.normal, text.full.abnormal, t);

  const slots = n * s.fsam.k * s.fsam.k;
  const trace: FsamTrace = { count: new Int32Array(n), neighbour: new Int32Array(slots), weight: new Float64Array(slots), cosine: new Float64Array(slots) };
  const enhanced = fsam(sample.high.subarray(...range), h, w, dim, s.fsam, new Float32Array(n * dim), trace);
  const pHigh = patchProbabilities(enhanced, n, dim, text.high.normal, text.high.abnormal, t);

  const low = sample.low.subarray(...range);
  // gscm attends to the low features themselves, or to their pooled cells (keyPool > 1).
  const pooled = s.gscm.keyPool > 1 ? averagePoolGrid(low, h, w, dim, s.gscm.keyPool) : undefined;
  const keys = pooled ? pooled.pooled : low;
  const keyCount = pooled ? pooled.ph * pooled.pw : n;
  const affinity = new Float32Array(n * keyCount);
  const context = gscm(low, h, w, dim, s.gscm, new Float32Array(n * dim), { affinity });
  const pLow = patchProbabilities(context, n, dim, text.low.normal, text.low.abnormal, t);
  return { pFull, pHigh, pLow, enhanced, trace, context, affinity, keys, keyCount };
}

/** Mean over layers with multiLayerBranchMaps' arithmetic (float64 sum, one division, float32). */
function layerMean(layers: LayerState[], pick: (s: LayerState) => Float32Array, n: number): Float32Array {
  const sum = new Float64Array(n);
  for (const state of layers) {
    const p = pick(state);
    for (let i = 0; i < n; i++) sum[i] += p[i];
  }
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = sum[i] / layers.length;
  return out;
}

export function forwardSample(sample: TrainingSample, text: BranchText, settings: ScoringSettings): ForwardResult {
  const n = sample.gridH * sample.gridW;
  const layers = Array.from({ length: sample.layers }, (_, l) => layerForward(sample, l, text, settings));
  const maps = {
    full: layerMean(layers, (s) => s.pFull, n),
    high: layerMean(layers, (s) => s.pHigh, n),
    low: layerMean(layers, (s) => s.pLow, n),
  };
  const fused = fuseMaps(maps, settings.fusion);
  const size = sample.maskSize;
  const upsampled = resizeBilinear(plane(sample.gridW, sample.gridH, fused), size, size).data;
  const image = text.image ?? text.full;
  const pImage = imageProbability(sample.imageEmbed, image.normal, image.abnormal, settings.temperature);
  return { layers, maps, fused, upsampled, pImage };
}
