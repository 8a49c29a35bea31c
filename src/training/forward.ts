// The training forward pass is the scoring itself: scoreGrid (pipeline.ts) runs the service's
// per-layer branch code (scoreLayer in branches.ts) and fusion, given a buffer set per layer so
// the intermediates the backward pass needs are kept; then the fused map is upsampled to the
// mask size as the loss sees it. The frequency split is the sample's own (sample.ts: computed
// once, the cutoff is not trained). test/training/forward.test.ts checks the maps equal
// scoreImage's grid maps bit for bit.
import type { BranchText, LayerBuffers } from '../methods/dense-frequency/branches.ts';
import type { FsamTrace } from '../methods/dense-frequency/fsam.ts';
import { scoreGrid, type ScoringSettings } from '../methods/dense-frequency/pipeline.ts';
import { upsampleBilinear } from '../imaging/resample-maps.ts';
import type { TrainingSample } from './sample.ts';

/** One layer's intermediates, as scoreLayer left them. */
export interface LayerState {
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

export function forwardSample(sample: TrainingSample, text: BranchText, settings: ScoringSettings): ForwardResult {
  if (!settings.branches) throw new RangeError('forwardSample: training scores with the branches on');
  const { gridH: h, gridW: w, dim } = sample;
  const n = h * w;
  const layerSize = n * dim;
  const slots = n * settings.fsam.k * settings.fsam.k;
  const buffers: LayerBuffers[] = [];
  const { pImage, maps, fused } = scoreGrid(sample, text, settings, {
    layerBuffers: (l) => {
      const range = [l * layerSize, (l + 1) * layerSize] as const;
      const layer: LayerBuffers = {
        low: sample.low.subarray(...range),
        high: sample.high.subarray(...range),
        splitGiven: true,
        enhanced: new Float32Array(layerSize),
        context: new Float32Array(layerSize),
        fsamTrace: { count: new Int32Array(n), neighbour: new Int32Array(slots), weight: new Float64Array(slots), cosine: new Float64Array(slots) },
      };
      buffers.push(layer);
      return layer;
    },
  });
  const layers = buffers.map(
    (b): LayerState => ({ enhanced: b.enhanced, trace: b.fsamTrace!, context: b.context, affinity: b.affinity!, keys: b.keys!, keyCount: b.keyCount! }),
  );
  const size = sample.maskSize;
  const upsampled = upsampleBilinear(fused, h, w, size, size);
  return { layers, maps: { full: maps.full, high: maps.high!, low: maps.low! }, fused, upsampled, pImage };
}
