// FSAM, training-free form (method.md §5): fine-grained structural attention on the
// high-frequency branch. Each patch attends to its k×k neighbours by feature similarity and is
// pushed away from that similarity-weighted local context:
//   a_ij = softmax_j(<Ĥ_i, Ĥ_j> / tau),  H'_i = H_i + beta · (H_i - Σ_j a_ij H_j).
// A patch that has a similar neighbour (a texture repeat, a straight edge) gets a context close
// to itself and is barely changed; an isolated patch (a small defect) has no similar neighbour,
// so its contrast with the context is large and gets amplified.

import { l2NormalizeRows } from '../../scoring/similarity.ts';

export interface FsamSettings {
  /** Odd window side; 3 = the 8 neighbours. Only neighbours inside the grid are used (no zero padding). */
  k: number;
  /** Strength of the contrast term; 0 returns H unchanged, 1 doubles the local contrast. */
  beta: number;
  /**
   * Softmax temperature on cosine similarity (rows are L2-normalised so tau does not depend
   * on the feature scale). 0.1 keeps the attention selective: a 0.1 cosine gap is a factor e,
   * so a patch follows its most similar neighbours instead of a plain local mean (which
   * would turn FSAM into a Laplacian that amplifies every edge).
   */
  tau: number;
  /**
   * Whether a patch attends to itself. Default false: its own similarity is always the
   * largest (1), so with a small tau it would dominate the context and cancel the contrast.
   */
  includeSelf: boolean;
}

export const defaultFsamSettings: FsamSettings = { k: 3, beta: 1.0, tau: 0.1, includeSelf: false };

/**
 * Optional record of the attention, for the training backward pass (src/training): the
 * temperature's gradient needs the weights and cosines, which the output alone does not give.
 * Patch i's neighbours sit in slots [i·k², i·k² + count[i]); the caller allocates n·k² slots.
 */
export interface FsamTrace {
  count: Int32Array;
  neighbour: Int32Array;
  /** Softmax weights a_ij. */
  weight: Float64Array;
  /** Cosines <Ĥ_i, Ĥ_j>. */
  cosine: Float64Array;
}

/** Enhanced high-frequency features H' ([h*w, D]); a patch without neighbours is left as is. */
export function fsam(
  high: Float32Array,
  h: number,
  w: number,
  dim: number,
  settings: Partial<FsamSettings> = {},
  out: Float32Array = new Float32Array(h * w * dim),
  trace?: FsamTrace,
): Float32Array {
  const { k, beta, tau, includeSelf } = { ...defaultFsamSettings, ...settings };
  if (!Number.isInteger(k) || k < 1 || k % 2 === 0) throw new RangeError(`fsam: k must be an odd integer >= 1, got ${k}`);
  if (!(tau > 0)) throw new RangeError(`fsam: tau must be > 0, got ${tau}`);
  const n = h * w;
  if (high.length < n * dim) throw new RangeError(`fsam: need [${h}*${w}, ${dim}] values`);
  if (out === high) throw new RangeError('fsam: out must not alias the input');

  const unit = l2NormalizeRows(high, n, dim);
  const radius = (k - 1) >> 1;
  const neighbour = new Int32Array(k * k);
  const weight = new Float64Array(k * k);
  const invTau = 1 / tau;

  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      const bi = i * dim;
      // Gather neighbours inside the grid and their scaled similarities.
      let count = 0;
      let maxLogit = -Infinity;
      for (let yy = Math.max(0, y - radius); yy <= Math.min(h - 1, y + radius); yy++) {
        for (let xx = Math.max(0, x - radius); xx <= Math.min(w - 1, x + radius); xx++) {
          const j = yy * w + xx;
          if (j === i && !includeSelf) continue;
          const bj = j * dim;
          let s = 0;
          for (let c = 0; c < dim; c++) s += unit[bi + c] * unit[bj + c];
          const logit = s * invTau;
          if (trace) trace.cosine[i * k * k + count] = s;
          neighbour[count] = j;
          weight[count] = logit;
          if (logit > maxLogit) maxLogit = logit;
          count++;
        }
      }
      if (trace) trace.count[i] = count;
      if (count === 0) {
        for (let c = 0; c < dim; c++) out[bi + c] = high[bi + c];
        continue;
      }
      let total = 0;
      for (let q = 0; q < count; q++) {
        weight[q] = Math.exp(weight[q] - maxLogit);
        total += weight[q];
      }
      // H'_i = (1 + beta) H_i - beta Σ_j a_ij H_j, written straight into out.
      for (let c = 0; c < dim; c++) out[bi + c] = (1 + beta) * high[bi + c];
      for (let q = 0; q < count; q++) {
        const a = (beta * weight[q]) / total;
        if (trace) {
          trace.neighbour[i * k * k + q] = neighbour[q];
          trace.weight[i * k * k + q] = weight[q] / total;
        }
        const bj = neighbour[q] * dim;
        for (let c = 0; c < dim; c++) out[bi + c] -= a * high[bj + c];
      }
    }
  }
  return out;
}
