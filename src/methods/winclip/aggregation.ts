// Harmonic aggregation of window scores into patch maps (method.md §6), as anomalib's
// models/image/winclip/utils.py harmonic_aggregation and the cross-scale step of
// torch_model.py _compute_zero_shot_scores. The harmonic mean is pulled towards the lowest
// score: a patch is called anomalous only when every window covering it says so.
import type { WindowMasks } from './masks.ts';

/** torch.nan_to_num(x, posinf=0.0) on float32: NaN → 0, +inf → 0, -inf → float32's lowest. */
function nanToNumPosinfZero(x: number): number {
  if (Number.isNaN(x) || x === Infinity) return 0;
  if (x === -Infinity) return -3.4028234663852886e38;
  return x;
}

/**
 * Per patch: (number of windows covering it) / Σ over those windows of 1 / score, then
 * nan_to_num(posinf=0) as anomalib does (a window score of 0 makes the sum infinite and the
 * patch 0). `windowScores` holds one score per window in the masks' order; returns
 * [gridH·gridW] row-major.
 */
export function harmonicAggregation(windowScores: ArrayLike<number>, masks: WindowMasks): Float64Array {
  if (windowScores.length !== masks.count) {
    throw new RangeError(`harmonicAggregation: ${windowScores.length} scores for ${masks.count} windows`);
  }
  const n = masks.gridH * masks.gridW;
  const covering = new Float64Array(n);
  const inverseSum = new Float64Array(n);
  for (let w = 0; w < masks.count; w++) {
    const inverse = 1 / windowScores[w];
    const base = w * masks.size;
    for (let i = 0; i < masks.size; i++) {
      const p = masks.indices[base + i];
      covering[p] += 1;
      inverseSum[p] += inverse;
    }
  }
  // A patch no window covers (stride > 1) gives 0 / 0 = NaN in anomalib too, then 0.
  const out = new Float64Array(n);
  for (let p = 0; p < n; p++) out[p] = nanToNumPosinfZero(covering[p] / inverseSum[p]);
  return out;
}

/**
 * Harmonic mean across scales, element-wise: maps.length / Σ 1 / map, with no nan_to_num
 * (anomalib's `(len(scales) + 1) / (1 / torch.stack(maps)).sum(dim=0)`): a 0 anywhere gives 0.
 */
export function harmonicMeanOfMaps(maps: readonly ArrayLike<number>[]): Float64Array {
  if (maps.length === 0) throw new RangeError('harmonicMeanOfMaps: no maps');
  const n = maps[0].length;
  const inverseSum = new Float64Array(n);
  for (const m of maps) {
    if (m.length !== n) throw new RangeError(`harmonicMeanOfMaps: maps of ${m.length} and ${n} values`);
    for (let i = 0; i < n; i++) inverseSum[i] += 1 / m[i];
  }
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = maps.length / inverseSum[i];
  return out;
}

/** Arithmetic mean across scales, element-wise (anomalib's few-shot `torch.stack(maps).mean(dim=0)`). */
export function meanOfMaps(maps: readonly ArrayLike<number>[]): Float64Array {
  if (maps.length === 0) throw new RangeError('meanOfMaps: no maps');
  const n = maps[0].length;
  const out = new Float64Array(n);
  for (const m of maps) {
    if (m.length !== n) throw new RangeError(`meanOfMaps: maps of ${m.length} and ${n} values`);
    for (let i = 0; i < n; i++) out[i] += m[i];
  }
  for (let i = 0; i < n; i++) out[i] /= maps.length;
  return out;
}
