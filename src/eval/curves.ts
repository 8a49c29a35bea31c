// Curves of an evaluation, as points to plot: the exact image-level ROC and the binned pixel
// ROC and PRO curves. evaluate.ts computes them per category; plots.ts draws them. The metric
// values in the report come from metrics.ts (exact); the pixel curves here are binned over BINS
// score levels, finer than a plot can show.
import { connectedComponents } from './metrics.ts';

/** A curve as parallel coordinate lists, starting at (0, 0). */
export interface Curve {
  x: number[];
  y: number[];
}

/** Score levels of the binned pixel curves: finer than a plot can show. */
export const BINS = 1024;
/** The FPR limit of AUPRO (method.md §7); the PRO plot's x axis ends here. */
export const PRO_FPR_LIMIT = 0.3;

const round6 = (v: number) => Math.round(v * 1e6) / 1e6;

/** Exact image-level ROC: one point per distinct score, ties taken together. Null with one class. */
export function imageRocCurve(scores: ArrayLike<number>, labels: ArrayLike<number>): Curve | null {
  const order = Array.from({ length: scores.length }, (_, i) => i).sort((a, b) => scores[b] - scores[a]);
  const P = order.filter((i) => labels[i]).length;
  const N = order.length - P;
  if (P === 0 || N === 0) return null;
  const curve: Curve = { x: [0], y: [0] };
  let tp = 0;
  let fp = 0;
  for (let k = 0; k < order.length; ) {
    const value = scores[order[k]];
    while (k < order.length && scores[order[k]] === value) {
      if (labels[order[k]]) tp++;
      else fp++;
      k++;
    }
    curve.x.push(round6(fp / N));
    curve.y.push(round6(tp / P));
  }
  return curve;
}

/**
 * Pixel ROC and PRO curves in one pass over the maps: each pixel goes into one of BINS score
 * levels between the lowest and highest map value; walking the levels from the top gives
 * FPR, TPR and PRO (mean per-component overlap, 8-connected components as in aupro).
 */
export function pixelCurves(maps: readonly Float32Array[], masks: readonly Uint8Array[], size: number, bins = BINS): { roc: Curve | null; pro: Curve | null } {
  let lo = Infinity;
  let hi = -Infinity;
  for (const m of maps) {
    for (let i = 0; i < m.length; i++) {
      if (m[i] < lo) lo = m[i];
      if (m[i] > hi) hi = m[i];
    }
  }
  const span = hi > lo ? hi - lo : 1;
  const negatives = new Float64Array(bins);
  const positives = new Float64Array(bins);
  const overlap = new Float64Array(bins); // Σ 1/|component| of the anomalous pixels at each level
  let components = 0;
  const scale = bins / span;
  maps.forEach((map, k) => {
    const mask = masks[k];
    if (isAllZero(mask)) {
      // A good image (most of them): every pixel is normal, no components to label.
      for (let i = 0; i < map.length; i++) negatives[Math.min(bins - 1, Math.floor((map[i] - lo) * scale))]++;
      return;
    }
    const { labels, count } = connectedComponents(mask, size, size);
    const sizes = new Float64Array(count + 1);
    for (let i = 0; i < labels.length; i++) sizes[labels[i]]++;
    components += count;
    for (let i = 0; i < map.length; i++) {
      const b = Math.min(bins - 1, Math.floor((map[i] - lo) * scale));
      const c = labels[i];
      if (c === 0) negatives[b]++;
      else {
        positives[b]++;
        overlap[b] += 1 / sizes[c];
      }
    }
  });
  const N = negatives.reduce((a, b) => a + b, 0);
  const P = positives.reduce((a, b) => a + b, 0);
  const roc: Curve = { x: [0], y: [0] };
  const pro: Curve = { x: [0], y: [0] };
  let fp = 0;
  let tp = 0;
  let o = 0;
  let proDone = false;
  for (let b = bins - 1; b >= 0; b--) {
    if (negatives[b] === 0 && positives[b] === 0) continue;
    const prevFpr = fp / N;
    const prevPro = o / components;
    fp += negatives[b];
    tp += positives[b];
    o += overlap[b];
    const fpr = fp / N;
    roc.x.push(round6(fpr));
    roc.y.push(round6(tp / P));
    if (!proDone && components > 0 && N > 0) {
      const p = o / components;
      if (fpr > PRO_FPR_LIMIT) {
        // Ends exactly at the limit, PRO interpolated, as aupro integrates it.
        pro.x.push(PRO_FPR_LIMIT);
        pro.y.push(round6(prevPro + ((p - prevPro) * (PRO_FPR_LIMIT - prevFpr)) / (fpr - prevFpr)));
        proDone = true;
      } else {
        pro.x.push(round6(fpr));
        pro.y.push(round6(p));
      }
    }
  }
  return { roc: P > 0 && N > 0 ? roc : null, pro: components > 0 && N > 0 ? pro : null };
}

function isAllZero(mask: Uint8Array): boolean {
  for (let i = 0; i < mask.length; i++) if (mask[i] !== 0) return false;
  return true;
}
