// The trained parameters as one flat float64 vector θ, and what they mean for the scoring code.
//
// Parametrisation (every trained value is an offset from the templated starting point, so θ = 0
// reproduces templated scoring bit for bit — exp(0) = 1 and x · 1 = x, x + 0 = x):
// - text: a normal and an abnormal vector [D] for each of full, high, low (branch maps) and
//   image (the image embedding), stored as they are. The scoring re-normalises text vectors,
//   so only their direction matters; the trainer puts them back on the unit sphere after each
//   step to keep Adam's step size meaningful.
// - temperature T = T₀ · exp(θ_T): positive whatever θ_T.
// - FSAM β = β₀ + θ_β (any real value is valid), FSAM τ = τ₀ · exp(θ_τf).
// - GSCM τ = τ₀ · exp(θ_τg).
// - fusion weights w_b = w₀_b · exp(θ_b). fuseMaps divides by Σ w, so the effective weights are
//   softmax(log w₀ + θ): positive and normalised by construction.
import type { BranchText, TextPair } from '../methods/dense-frequency/branches.ts';
import type { FusionWeights } from '../methods/dense-frequency/fusion.ts';
import type { ScoringSettings } from '../methods/dense-frequency/pipeline.ts';

export const TEXT_PAIRS = ['full', 'high', 'low', 'image'] as const;
export type PairName = (typeof TEXT_PAIRS)[number];
export const FUSION_BRANCHES = ['full', 'high', 'low'] as const;

/** Where training starts: the templated text pair(s) and the scoring settings. */
export interface ParameterBase {
  dim: number;
  text: Record<PairName, TextPair>;
  /** Base values of the trained settings; the untrained ones (cutoff, fsam.k, sigma, …) are used as they are. */
  scoring: ScoringSettings;
}

export class ParameterSpace {
  readonly dim: number;
  /** Offsets into θ. */
  readonly logTemperature: number;
  readonly fsamBeta: number;
  readonly fsamLogTau: number;
  readonly gscmLogTau: number;
  /** Three consecutive entries: full, high, low. */
  readonly fusion: number;
  readonly size: number;

  constructor(readonly base: ParameterBase) {
    const d = base.dim;
    if (!Number.isInteger(d) || d < 1) throw new RangeError(`ParameterSpace: bad dim ${d}`);
    for (const name of TEXT_PAIRS) {
      const pair = base.text[name];
      if (pair.normal.length !== d || pair.abnormal.length !== d) throw new RangeError(`ParameterSpace: text.${name} must hold two [${d}] vectors`);
    }
    this.dim = d;
    const textSize = TEXT_PAIRS.length * 2 * d;
    this.logTemperature = textSize;
    this.fsamBeta = textSize + 1;
    this.fsamLogTau = textSize + 2;
    this.gscmLogTau = textSize + 3;
    this.fusion = textSize + 4;
    this.size = textSize + 7;
  }

  /** Offset of one text vector. */
  textOffset(pair: PairName, side: 'normal' | 'abnormal'): number {
    return (TEXT_PAIRS.indexOf(pair) * 2 + (side === 'normal' ? 0 : 1)) * this.dim;
  }

  /** θ at the starting point: the templated vectors, zero offsets. */
  initial(): Float64Array {
    const theta = new Float64Array(this.size);
    for (const name of TEXT_PAIRS) {
      theta.set(this.base.text[name].normal, this.textOffset(name, 'normal'));
      theta.set(this.base.text[name].abnormal, this.textOffset(name, 'abnormal'));
    }
    return theta;
  }

  textPair(theta: Float64Array, name: PairName): TextPair {
    const n = this.textOffset(name, 'normal');
    const a = this.textOffset(name, 'abnormal');
    return {
      normal: Float32Array.from(theta.subarray(n, n + this.dim)),
      abnormal: Float32Array.from(theta.subarray(a, a + this.dim)),
    };
  }

  branchText(theta: Float64Array): BranchText {
    return {
      full: this.textPair(theta, 'full'),
      high: this.textPair(theta, 'high'),
      low: this.textPair(theta, 'low'),
      image: this.textPair(theta, 'image'),
    };
  }

  fusionWeights(theta: Float64Array): FusionWeights {
    const w = this.base.scoring.fusion;
    return {
      full: w.full * Math.exp(theta[this.fusion]),
      high: w.high * Math.exp(theta[this.fusion + 1]),
      low: w.low * Math.exp(theta[this.fusion + 2]),
    };
  }

  /** The scoring settings θ stands for (branches always on: the branch prompts are trained). */
  scoring(theta: Float64Array): ScoringSettings {
    const s = this.base.scoring;
    return {
      ...s,
      branches: true,
      temperature: s.temperature * Math.exp(theta[this.logTemperature]),
      fsam: { ...s.fsam, beta: s.fsam.beta + theta[this.fsamBeta], tau: s.fsam.tau * Math.exp(theta[this.fsamLogTau]) },
      gscm: { ...s.gscm, tau: s.gscm.tau * Math.exp(theta[this.gscmLogTau]) },
      fusion: this.fusionWeights(theta),
    };
  }

  /** Readable name of θ[i], e.g. "text.high.abnormal[3]" or "fsam.tau (log)", for messages. */
  nameOf(i: number): string {
    const textSize = TEXT_PAIRS.length * 2 * this.dim;
    if (i < textSize) {
      const vector = Math.floor(i / this.dim);
      return `text.${TEXT_PAIRS[vector >> 1]}.${vector % 2 === 0 ? 'normal' : 'abnormal'}[${i % this.dim}]`;
    }
    const scalars = ['temperature (log)', 'fsam.beta', 'fsam.tau (log)', 'gscm.tau (log)', 'fusion.full (log)', 'fusion.high (log)', 'fusion.low (log)'];
    return scalars[i - textSize] ?? `θ[${i}]`;
  }

  /** Puts every text vector back on the unit sphere (the scoring only sees directions). */
  normalizeText(theta: Float64Array): void {
    const vectors = TEXT_PAIRS.length * 2;
    for (let v = 0; v < vectors; v++) {
      const base = v * this.dim;
      let sq = 0;
      for (let k = 0; k < this.dim; k++) sq += theta[base + k] * theta[base + k];
      if (sq === 0) continue;
      const inv = 1 / Math.sqrt(sq);
      for (let k = 0; k < this.dim; k++) theta[base + k] *= inv;
    }
  }
}
