// Feature–text similarity turned into an anomaly probability (method.md §4):
// p = softmax([cos_n, cos_a] / T)[abnormal] = sigmoid((cos_a - cos_n) / T).

/** WinCLIP / AnomalyCLIP temperature (1/T ≈ 14.3); OpenAI's logit scale 100 is T = 0.01. */
export const DEFAULT_TEMPERATURE = 0.07;

/** Numerically stable logistic function. */
export function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

/**
 * L2-normalises each of the `n` rows of `src` ([n, dim]) into `out` (may be `src` itself).
 * Zero rows stay zero.
 */
export function l2NormalizeRows(
  src: Float32Array,
  n: number,
  dim: number,
  out: Float32Array = new Float32Array(n * dim),
): Float32Array {
  for (let r = 0; r < n; r++) {
    const base = r * dim;
    let sq = 0;
    for (let k = 0; k < dim; k++) sq += src[base + k] * src[base + k];
    const inv = sq > 0 ? 1 / Math.sqrt(sq) : 0;
    for (let k = 0; k < dim; k++) out[base + k] = src[base + k] * inv;
  }
  return out;
}

/**
 * (t_abnormal/|t_abnormal| - t_normal/|t_normal|): with it one dot product per patch gives
 * cos_a - cos_n up to the patch norm. Text vectors are re-normalised so cosine stays a cosine
 * even for learned (not exactly unit) prompt vectors.
 */
function textDifference(textNormal: Float32Array, textAbnormal: Float32Array, dim: number): Float64Array {
  if (textNormal.length !== dim || textAbnormal.length !== dim) {
    throw new RangeError(
      `text embeddings must have ${dim} values, got ${textNormal.length} and ${textAbnormal.length}`,
    );
  }
  let sn = 0;
  let sa = 0;
  for (let k = 0; k < dim; k++) {
    sn += textNormal[k] * textNormal[k];
    sa += textAbnormal[k] * textAbnormal[k];
  }
  const invN = sn > 0 ? 1 / Math.sqrt(sn) : 0;
  const invA = sa > 0 ? 1 / Math.sqrt(sa) : 0;
  const diff = new Float64Array(dim);
  for (let k = 0; k < dim; k++) diff[k] = textAbnormal[k] * invA - textNormal[k] * invN;
  return diff;
}

/**
 * Anomaly probability of each of the `n` rows of `features` ([n, dim]); rows are
 * L2-normalised on the fly (a zero row gets p = 0.5).
 */
export function patchProbabilities(
  features: Float32Array,
  n: number,
  dim: number,
  textNormal: Float32Array,
  textAbnormal: Float32Array,
  temperature: number = DEFAULT_TEMPERATURE,
  out: Float32Array = new Float32Array(n),
): Float32Array {
  if (features.length < n * dim) throw new RangeError(`patchProbabilities: need [${n}, ${dim}] features`);
  if (!(temperature > 0)) throw new RangeError(`temperature must be > 0, got ${temperature}`);
  const diff = textDifference(textNormal, textAbnormal, dim);
  const invT = 1 / temperature;
  for (let r = 0; r < n; r++) {
    const base = r * dim;
    let sq = 0;
    let d = 0;
    for (let k = 0; k < dim; k++) {
      const f = features[base + k];
      sq += f * f;
      d += f * diff[k];
    }
    out[r] = sigmoid(sq > 0 ? (d / Math.sqrt(sq)) * invT : 0);
  }
  return out;
}

/** Anomaly probability of one embedding (e.g. the image embedding). */
export function imageProbability(
  embed: Float32Array,
  textNormal: Float32Array,
  textAbnormal: Float32Array,
  temperature: number = DEFAULT_TEMPERATURE,
): number {
  return patchProbabilities(embed, 1, embed.length, textNormal, textAbnormal, temperature)[0];
}
