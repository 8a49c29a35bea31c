// The backward pass of forward.ts: dL/dθ for one image, given dL/dP (the upsampled map) and
// dL/dp_image from loss.ts. Written against the scoring code's formulas:
// - similarity.ts: p = σ(s), s = <f̂, â − n̂> / T with f̂, â, n̂ the normalised feature and text
//   vectors (the text is re-normalised inside, so the gradient goes through that too);
// - fsam.ts: H'_i = (1 + β) H_i − β Σ_j a_ij H_j, a_ij = softmax_j(c_ij / τ); H is the fixed
//   high-frequency part, so only β and τ get gradients:
//     ∂H'_i/∂β = H_i − Σ_j a_ij H_j,   ∂H'_i/∂log τ = β Σ_j a_ij (z_ij − z̄_i) H_j,
//   with z_ij = c_ij / τ and z̄_i = Σ_j a_ij z_ij (from FsamTrace);
// - gscm.ts: L'_i = Σ_j W_ij V_j, W_ij = softmax_j(c_ij / τ):
//     ∂L'_i/∂log τ = −Σ_j W_ij (z_ij − z̄_i) V_j,  where z_ij − z̄_i = log W_ij − Σ_k W_ik log W_ik
//   (the softmax's own output gives the centred logits, so no cosine has to be recomputed);
// - fusion.ts: F = Σ_b w_b M_b / Σ_b w_b, w_b = w₀_b e^θ_b: ∂F/∂θ_b = w_b (M_b − F) / Σ w;
// - layer mean: ∂M_b/∂p_b,l = 1 / layers; upsampling: upsample-transpose.ts.
import type { BranchText, TextPair } from '../methods/dense-frequency/branches.ts';
import type { FsamTrace } from '../methods/dense-frequency/fsam.ts';
import type { ScoringSettings } from '../methods/dense-frequency/pipeline.ts';
import { sigmoid } from '../scoring/similarity.ts';
import type { ForwardResult } from './forward.ts';
import { FUSION_BRANCHES, type PairName, type ParameterSpace } from './parameters.ts';
import type { TrainingSample } from './sample.ts';
import { upsampleBilinearTranspose } from './upsample-transpose.ts';

/**
 * Backward of patchProbabilities over `n` rows of `features`: accumulates dL/d(text vectors)
 * into `gNormal` / `gAbnormal`, writes dL/d(features) into `dFeatures` when given, and returns
 * dL/d log T. `dp` is dL/dp per row.
 */
export function probabilityBackward(
  features: Float32Array,
  n: number,
  dim: number,
  pair: TextPair,
  temperature: number,
  dp: ArrayLike<number>,
  gNormal: Float64Array,
  gAbnormal: Float64Array,
  dFeatures?: Float64Array,
): number {
  const unitOf = (v: Float32Array) => {
    let sq = 0;
    for (let k = 0; k < dim; k++) sq += v[k] * v[k];
    const norm = Math.sqrt(sq);
    return { unit: Float64Array.from(v, (x) => (norm > 0 ? x / norm : 0)), norm };
  };
  const a = unitOf(pair.abnormal);
  const nn = unitOf(pair.normal);
  const diff = new Float64Array(dim);
  for (let k = 0; k < dim; k++) diff[k] = a.unit[k] - nn.unit[k];

  const invT = 1 / temperature;
  const dDiff = new Float64Array(dim);
  let dLogT = 0;
  for (let r = 0; r < n; r++) {
    const base = r * dim;
    let sq = 0;
    let dot = 0;
    for (let k = 0; k < dim; k++) {
      const f = features[base + k];
      sq += f * f;
      dot += f * diff[k];
    }
    if (dFeatures) for (let k = 0; k < dim; k++) dFeatures[base + k] = 0;
    if (sq === 0 || dp[r] === 0) continue; // a zero row scores 0.5 whatever the parameters
    const norm = Math.sqrt(sq);
    const s = (dot / norm) * invT;
    const p = sigmoid(s);
    const ds = dp[r] * p * (1 - p);
    dLogT -= ds * s;
    const scale = (ds * invT) / norm;
    for (let k = 0; k < dim; k++) dDiff[k] += scale * features[base + k];
    if (dFeatures) {
      const proj = dot / sq;
      for (let k = 0; k < dim; k++) dFeatures[base + k] = scale * (diff[k] - proj * features[base + k]);
    }
  }
  // diff = â − n̂, â = a/|a|: dâ/da = (I − â âᵀ) / |a|.
  const project = (u: { unit: Float64Array; norm: number }, sign: number, g: Float64Array) => {
    if (u.norm === 0) return;
    let along = 0;
    for (let k = 0; k < dim; k++) along += u.unit[k] * dDiff[k];
    for (let k = 0; k < dim; k++) g[k] += (sign * (dDiff[k] - u.unit[k] * along)) / u.norm;
  };
  project(a, 1, gAbnormal);
  project(nn, -1, gNormal);
  return dLogT;
}

/** dL/dβ and dL/d log τ of FSAM, given dL/dH' and the high features H. */
export function fsamBackward(
  high: Float32Array,
  n: number,
  dim: number,
  trace: FsamTrace,
  k: number,
  beta: number,
  tau: number,
  dEnhanced: Float64Array,
): { dBeta: number; dLogTau: number } {
  let dBeta = 0;
  let dLogTau = 0;
  const slots = k * k;
  const g = new Float64Array(slots);
  for (let i = 0; i < n; i++) {
    const count = trace.count[i];
    if (count === 0) continue; // H'_i = H_i: no parameter involved
    const bi = i * dim;
    const base = i * slots;
    let self = 0;
    for (let c = 0; c < dim; c++) self += dEnhanced[bi + c] * high[bi + c];
    let context = 0;
    let zMean = 0;
    for (let q = 0; q < count; q++) {
      const bj = trace.neighbour[base + q] * dim;
      let s = 0;
      for (let c = 0; c < dim; c++) s += dEnhanced[bi + c] * high[bj + c];
      g[q] = s;
      const a = trace.weight[base + q];
      context += a * s;
      zMean += a * (trace.cosine[base + q] / tau);
    }
    dBeta += self - context;
    for (let q = 0; q < count; q++) dLogTau += beta * trace.weight[base + q] * (trace.cosine[base + q] / tau - zMean) * g[q];
  }
  return { dBeta, dLogTau };
}

/** dL/d log τ of GSCM, given dL/dL', the keys V ([m, dim]) and the affinity W ([n, m]). */
export function gscmBackward(keys: Float32Array, m: number, n: number, dim: number, affinity: Float32Array, dContext: Float64Array): number {
  let dLogTau = 0;
  const logW = new Float64Array(m);
  for (let i = 0; i < n; i++) {
    const bi = i * dim;
    const row = i * m;
    let mean = 0; // Σ_k W_ik log W_ik = z̄_i − logsumexp_i
    for (let j = 0; j < m; j++) {
      const wij = affinity[row + j];
      logW[j] = wij > 0 ? Math.log(wij) : 0;
      mean += wij * logW[j];
    }
    for (let j = 0; j < m; j++) {
      const wij = affinity[row + j];
      if (wij === 0) continue; // underflowed weight: no contribution
      const bj = j * dim;
      let s = 0;
      for (let c = 0; c < dim; c++) s += dContext[bi + c] * keys[bj + c];
      dLogTau -= wij * (logW[j] - mean) * s;
    }
  }
  return dLogTau;
}

/**
 * Adds dL/dθ of one image to `grad`. `dMap` is dL/d(upsampled map), `dPImage` dL/dp_image;
 * `text` and `settings` are what the forward pass ran with (space.branchText(θ), space.scoring(θ)).
 */
export function backwardSample(
  space: ParameterSpace,
  text: BranchText,
  sample: TrainingSample,
  fwd: ForwardResult,
  settings: ScoringSettings,
  dMap: Float64Array,
  dPImage: number,
  grad: Float64Array,
): void {
  const { gridH: h, gridW: w, dim } = sample;
  const n = h * w;
  const size = sample.maskSize;
  const gradOf = (pair: PairName, side: 'normal' | 'abnormal') => {
    const o = space.textOffset(pair, side);
    return grad.subarray(o, o + dim);
  };
  const T = settings.temperature;

  // Image probability: one "patch", the image embedding.
  grad[space.logTemperature] += probabilityBackward(sample.imageEmbed, 1, dim, text.image!, T, [dPImage], gradOf('image', 'normal'), gradOf('image', 'abnormal'));

  // Upsampled map → fused grid map → branch maps and fusion weights.
  const dFused = upsampleBilinearTranspose(dMap, h, w, size, size);
  const weights = settings.fusion;
  const total = weights.full + weights.high + weights.low;
  const dBranch: Record<(typeof FUSION_BRANCHES)[number], Float64Array> = { full: new Float64Array(n), high: new Float64Array(n), low: new Float64Array(n) };
  FUSION_BRANCHES.forEach((b, index) => {
    const wb = weights[b];
    if (wb === 0) return;
    const map = fwd.maps[b];
    let dTheta = 0;
    for (let i = 0; i < n; i++) {
      dTheta += dFused[i] * (map[i] - fwd.fused[i]);
      // Each layer's probability enters the branch map with weight 1 / layers.
      dBranch[b][i] = (dFused[i] * wb) / total / sample.layers;
    }
    grad[space.fusion + index] += (dTheta * wb) / total;
  });

  const layerSize = n * dim;
  const dFeatures = new Float64Array(layerSize);
  for (let l = 0; l < sample.layers; l++) {
    const state = fwd.layers[l];
    const range = [l * layerSize, (l + 1) * layerSize] as const;
    grad[space.logTemperature] += probabilityBackward(sample.dense.subarray(...range), n, dim, text.full, T, dBranch.full, gradOf('full', 'normal'), gradOf('full', 'abnormal'));

    grad[space.logTemperature] += probabilityBackward(state.enhanced, n, dim, text.high, T, dBranch.high, gradOf('high', 'normal'), gradOf('high', 'abnormal'), dFeatures);
    const f = fsamBackward(sample.high.subarray(...range), n, dim, state.trace, settings.fsam.k, settings.fsam.beta, settings.fsam.tau, dFeatures);
    grad[space.fsamBeta] += f.dBeta;
    grad[space.fsamLogTau] += f.dLogTau;

    grad[space.logTemperature] += probabilityBackward(state.context, n, dim, text.low, T, dBranch.low, gradOf('low', 'normal'), gradOf('low', 'abnormal'), dFeatures);
    grad[space.gscmLogTau] += gscmBackward(state.keys, state.keyCount, n, dim, state.affinity, dFeatures);
  }
}
