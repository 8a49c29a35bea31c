// Fusion of the branch maps into one response map (method.md §5) and of the image probability
// with the map into one image score (method.md §4, "fused image score").

export interface FusionWeights {
  full: number;
  high: number;
  low: number;
}

/**
 * Untuned defaults: the full map carries the most weight because it is the plain, published
 * zero-shot map; the two branches share the rest equally, as neither is known to dominate.
 * Weights are normalised by their sum, so only their ratios matter.
 */
export const defaultFusionWeights: FusionWeights = { full: 0.4, high: 0.3, low: 0.3 };

export interface FusionInput {
  full: Float32Array;
  high?: Float32Array;
  low?: Float32Array;
}

/**
 * Σ_b w_b · map_b / Σ_b w_b. Branches with weight 0 are skipped (and may be absent), so
 * weights (1, 0, 0) reproduce the full map exactly.
 */
export function fuseMaps(
  maps: FusionInput,
  weights: FusionWeights = defaultFusionWeights,
  out: Float32Array = new Float32Array(maps.full.length),
): Float32Array {
  const n = maps.full.length;
  const terms: Array<[Float32Array, number]> = [];
  let total = 0;
  for (const name of ['full', 'high', 'low'] as const) {
    const w = weights[name];
    if (!(w >= 0) || !Number.isFinite(w)) throw new RangeError(`fusion weight ${name} must be finite and >= 0, got ${w}`);
    if (w === 0) continue;
    const map = maps[name];
    if (map === undefined) throw new RangeError(`fusion weight ${name} is ${w} but the ${name} map is missing`);
    if (map.length !== n) throw new RangeError(`fusion: ${name} map has ${map.length} values, expected ${n}`);
    terms.push([map, w]);
    total += w;
  }
  if (total === 0) throw new RangeError('fusion weights must not all be 0');
  if (terms.length === 1) {
    out.set(terms[0][0]);
    return out;
  }
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let t = 0; t < terms.length; t++) s += terms[t][1] * terms[t][0][i];
    out[i] = s / total;
  }
  return out;
}

export interface ImageScoreSettings {
  /**
   * Weight of the image-level probability against the map statistic. 0.5: the two are
   * complementary (global semantics vs. local defects) and neither is tuned on real weights.
   */
  alpha: number;
  /**
   * Percentage of the highest map values averaged into the map statistic (at least one
   * value). 1%: a small defect covering a few patches still moves the score, while a single
   * noisy patch is averaged with its peers.
   */
  topKPercent: number;
}

export const defaultImageScoreSettings: ImageScoreSettings = { alpha: 0.5, topKPercent: 1 };

/** Mean of the ceil(topKPercent% of n) largest values (at least one). */
export function topKMean(map: Float32Array, topKPercent: number): number {
  const n = map.length;
  if (n === 0) throw new RangeError('topKMean: empty map');
  if (!(topKPercent > 0 && topKPercent <= 100)) throw new RangeError(`topKPercent must be in (0, 100], got ${topKPercent}`);
  const k = Math.max(1, Math.min(n, Math.ceil((n * topKPercent) / 100)));
  const sorted = Float32Array.from(map).sort();
  let s = 0;
  for (let i = n - k; i < n; i++) s += sorted[i];
  return s / k;
}

/** alpha · pImage + (1 - alpha) · mean of the top-k% map values. */
export function imageScore(pImage: number, map: Float32Array, settings: Partial<ImageScoreSettings> = {}): number {
  const { alpha, topKPercent } = { ...defaultImageScoreSettings, ...settings };
  if (!(alpha >= 0 && alpha <= 1)) throw new RangeError(`alpha must be in [0, 1], got ${alpha}`);
  if (alpha === 1) return pImage;
  return alpha * pImage + (1 - alpha) * topKMean(map, topKPercent);
}
