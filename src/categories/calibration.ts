// Calibrated verdicts from normal images only. Pure functions, no I/O.
//
// The rule (split-conformal / order-statistic tolerance bound, distribution-free): score m normal
// images, sort them s(1) ≤ … ≤ s(m), and call "anomalous" only what lies strictly above the
// (j+1)-th largest, s(m−j). For normals drawn i.i.d. from any distribution, the false-alarm rate
// FAR = P(normal is flagged) then satisfies P(FAR > α) ≤ P(Binomial(m, α) ≤ j), with equality
// for continuous score distributions. We take the largest j keeping that ≤ δ = 1 − confidence:
// the least conservative threshold that still keeps the guarantee.
//
// Ties and `≥`. The service decides `isAnomalous = score ≥ threshold` (src/detection/response.ts)
// but draws regions where `map > threshold` (src/scoring/regions.ts). The guarantee needs the
// verdict to be "strictly above s(m−j)":
// - Proof sketch: let h(t) = P(S > t) (right-continuous) and τ = inf{t : h(t) ≤ α}. Then
//   FAR > α ⇔ s(m−j) < τ ⇔ at most j of the m normals are ≥ τ, and P(S ≥ τ) ≥ α, so the
//   count is Binomial(m, p ≥ α) and P(count ≤ j) ≤ P(Bin(m, α) ≤ j). Holds with any ties.
// - With `score ≥ s(m−j)` instead, a tie block at the threshold is flagged whole and the bound
//   fails: if 5% of normals score exactly 1.0, `≥ 1.0` flags 5% of normals whatever m is.
// So the image threshold is nextUp(s(m−j)), the next double: `score ≥ nextUp(s)` ⇔ `score > s`
// for every double score. At most j calibration normals are flagged (fewer when s(m−j) is tied).
// The pixel threshold is s(m−j) itself, since findRegions already compares with `>`.

import { ServiceError } from '../errors.ts';

/** What `calibrateThreshold` returns. */
export interface Calibration {
  /** Verdict: anomalous ⇔ score ≥ threshold (just above the (rank+1)-th largest normal score). */
  threshold: number;
  /** How many normal scores were calibrated on. */
  m: number;
  /** j: the threshold is just above the (j+1)-th largest normal score; ≤ j of them are flagged. */
  rank: number;
  /** How many calibration normals are ≥ threshold: j, or fewer when s(m−j) is tied. */
  flagged: number;
  /** Achieved confidence 1 − P(Bin(m, α) ≤ j) that the false-alarm rate is ≤ α (≥ the requested). */
  confidence: number;
  /** α, as requested. */
  targetFalseAlarmRate: number;
  /** A plain sentence stating the guarantee. */
  guarantee: string;
  /** The normal scores, sorted ascending, exact: a calibration recomputed from them (a false alarm added) must find the same order statistics. */
  scores: number[];
}

/** 422 too_few_normals: even the largest normal score as threshold cannot give the guarantee. */
export class TooFewNormalsError extends ServiceError {
  constructor(
    /** The smallest m with (1 − α)^m ≤ δ. */
    readonly needed: number,
    readonly got: number,
    readonly targetFalseAlarmRate: number,
    readonly confidence: number,
  ) {
    super(
      422,
      'too_few_normals',
      `calibration needs at least ${needed} normal images for a false-alarm rate ≤ ${pct(targetFalseAlarmRate)} ` +
        `with ${pct(confidence)} confidence (got ${got}); add normal images, or raise targetFalseAlarmRate, or lower the confidence`,
    );
    this.name = 'TooFewNormalsError';
  }
}

/** The smallest m with (1 − α)^m ≤ 1 − confidence: below it no order statistic gives the guarantee. */
export function minimumNormals(targetFalseAlarmRate: number, confidence: number): number {
  checkLevels(targetFalseAlarmRate, confidence);
  const L = Math.log1p(-targetFalseAlarmRate);
  const logDelta = Math.log1p(-confidence);
  // The closed form, then nudged so it agrees exactly with the j = 0 test in chooseRank (m·L ≤ log δ).
  // Rounding puts the closed form at most a step or two off, so the nudges are bounded: past 2^53
  // (α near 1e-16) n − 1 === n and an unbounded nudge never ended, holding the event loop.
  let n = Math.max(0, Math.ceil(logDelta / L));
  if (!Number.isSafeInteger(n)) return n;
  for (let step = 0; step < 4 && n > 0 && (n - 1) * L <= logDelta; step++) n--;
  for (let step = 0; step < 4 && n * L > logDelta; step++) n++;
  return n;
}

/**
 * P(Binomial(m, p) ≤ k), summed in log space from the k = 0 term so it neither underflows
 * ((1 − p)^m is 0 in doubles for m = 100,000, p = 1%) nor loses the small lower tail to 1 − x.
 */
export function binomialCdf(m: number, p: number, k: number): number {
  k = Math.floor(k);
  if (k < 0) return 0;
  if (k >= m) return 1;
  let logCdf = -Infinity;
  for (const step of binomialLogCdfSteps(m, p)) {
    logCdf = step.logCdf;
    if (step.k === k) break;
  }
  return Math.exp(logCdf);
}

/**
 * Distribution-free image threshold from normal scores: P(false-alarm rate > α) ≤ 1 − confidence
 * for the verdict `score ≥ threshold`, whatever the normal score distribution (ties included).
 * Throws TooFewNormalsError (422) when m is too small for any threshold to give that.
 */
export function calibrateThreshold(normalScores: readonly number[], targetFalseAlarmRate: number, confidence: number): Calibration {
  const { sorted, j, logCdf } = orderStatistic(normalScores, targetFalseAlarmRate, confidence);
  const m = sorted.length;
  const threshold = nextUp(sorted[m - 1 - j]);
  let flagged = 0;
  for (let i = m - 1; i >= 0 && sorted[i] >= threshold; i--) flagged++;
  const failure = Math.exp(logCdf); // P(FAR > α) ≤ this
  return {
    threshold,
    m,
    rank: j,
    flagged,
    confidence: -Math.expm1(logCdf), // 1 − e^logCdf without cancellation
    targetFalseAlarmRate,
    guarantee:
      `P(false-alarm rate > ${pct(targetFalseAlarmRate)}) ≤ ${pctUp(failure)} (m = ${m} normal scores, ` +
      `threshold = just above their ${ordinalLargest(j + 1)}, ${j === 0 ? 'so none of them is flagged' : `so at most ${j} of them are flagged`})`,
    scores: Array.from(sorted),
  };
}

/**
 * Pixel threshold from each normal image's map maximum: with confidence 1 − δ, regions
 * (`map > threshold`, as findRegions draws them) appear on at most α of normal images.
 * The same order statistic as calibrateThreshold, returned as s(m−j) itself because the
 * region test is already strict. A minimum region area only removes regions: still covered.
 */
export function calibratePixelThreshold(perImageMaxima: readonly number[], targetFalseAlarmRate: number, confidence: number): number {
  const { sorted, j } = orderStatistic(perImageMaxima, targetFalseAlarmRate, confidence);
  return sorted[sorted.length - 1 - j];
}

/** calibratePixelThreshold on the maxima of normal images' anomaly maps. */
export function pixelThresholdFromMaps(maps: readonly Float32Array[], targetFalseAlarmRate: number, confidence: number): number {
  const maxima = maps.map((map, i) => {
    if (map.length === 0) throw new RangeError(`map ${i} is empty`);
    let max = -Infinity;
    for (let k = 0; k < map.length; k++) if (map[k] > max || Number.isNaN(map[k])) max = map[k]; // loop: no spread limit on big maps
    return max;
  });
  return calibratePixelThreshold(maxima, targetFalseAlarmRate, confidence);
}

/**
 * Histogram of scores for the web page: `bins` equal bins over [min, max], the last one closed.
 * No scores: empty. All scores equal: one bin [v, v] holding them all.
 */
export function histogram(scores: readonly number[], bins: number): { edges: number[]; counts: number[] } {
  if (!Number.isInteger(bins) || bins < 1) throw new RangeError(`bins must be an integer ≥ 1, got ${bins}`);
  checkFinite(scores);
  if (scores.length === 0) return { edges: [], counts: [] };
  let [min, max] = [Infinity, -Infinity];
  for (const s of scores) [min, max] = [Math.min(min, s), Math.max(max, s)];
  if (min === max) return { edges: [min, max], counts: [scores.length] };
  const width = (max - min) / bins;
  const edges = Array.from({ length: bins + 1 }, (_, i) => (i === bins ? max : min + i * width));
  const counts = new Array<number>(bins).fill(0);
  for (const s of scores) {
    let b = Math.min(bins - 1, Math.floor((s - min) / width));
    // The division can land an ulp off the stored edges: settle on the edges the caller sees.
    while (b > 0 && s < edges[b]) b--;
    while (b < bins - 1 && s >= edges[b + 1]) b++;
    counts[b]++;
  }
  return { edges, counts };
}

// ---- internals ----

/** Sort the scores and choose j: the largest with P(Bin(m, α) ≤ j) ≤ δ; throws when none. */
function orderStatistic(scores: readonly number[], alpha: number, confidence: number) {
  checkLevels(alpha, confidence);
  checkFinite(scores);
  const sorted = Float64Array.from(scores).sort(); // typed-array sort is numeric
  const logDelta = Math.log1p(-confidence);
  let j = -1;
  let logCdf = -Infinity;
  // The CDF only grows with k: walk up until it passes δ. j < m always, since CDF(m) = 1 > δ.
  for (const step of binomialLogCdfSteps(sorted.length, alpha)) {
    if (step.logCdf > logDelta) break;
    ({ k: j, logCdf } = step);
  }
  if (j < 0) throw new TooFewNormalsError(minimumNormals(alpha, confidence), sorted.length, alpha, confidence);
  return { sorted, j, logCdf };
}

/** log P(Bin(m, p) ≤ k) for k = 0, 1, …, m − 1, via the pmf ratio (m−k)/(k+1) · p/(1−p). */
function* binomialLogCdfSteps(m: number, p: number): Generator<{ k: number; logCdf: number }> {
  const logOdds = Math.log(p) - Math.log1p(-p);
  let logPmf = m * Math.log1p(-p); // same expression as minimumNormals' test, so they agree at j = 0
  let logCdf = logPmf;
  for (let k = 0; k < m; k++) {
    yield { k, logCdf };
    logPmf += Math.log((m - k) / (k + 1)) + logOdds;
    logCdf = logAddExp(logCdf, logPmf);
  }
}

function logAddExp(a: number, b: number): number {
  const hi = Math.max(a, b);
  return hi === -Infinity ? hi : hi + Math.log1p(Math.exp(Math.min(a, b) - hi));
}

/** The smallest double above x: `score ≥ nextUp(x)` ⇔ `score > x`. */
function nextUp(x: number): number {
  if (x === 0) return Number.MIN_VALUE; // covers −0 too
  const bits = new BigInt64Array(Float64Array.of(x).buffer);
  bits[0] += x > 0 ? 1n : -1n; // IEEE order: magnitude up for positives, down for negatives
  return new Float64Array(bits.buffer)[0];
}

function checkLevels(alpha: number, confidence: number): void {
  if (!(alpha > 0 && alpha < 1)) throw new RangeError(`targetFalseAlarmRate must be in (0, 1), got ${alpha}`);
  if (!(confidence > 0 && confidence < 1)) throw new RangeError(`confidence must be in (0, 1), got ${confidence}`);
}

function checkFinite(scores: readonly number[]): void {
  // A NaN would sort anywhere and void the guarantee; ±Infinity has no nextUp worth trusting.
  for (let i = 0; i < scores.length; i++) if (!Number.isFinite(scores[i])) throw new RangeError(`score ${i} is not finite: ${scores[i]}`);
}

/** 0.01 → "1%", 0.999 → "99.9%". */
function pct(x: number): string {
  return `${Number((x * 100).toPrecision(4))}%`;
}

/** An upper bound shown with 2 significant digits, rounded up so "≤" stays true. */
function pctUp(x: number): string {
  const p = x * 100;
  if (p === 0) return '0%';
  const e = Math.floor(Math.log10(p));
  const unit = 10 ** (e - 1);
  return `${Number((Math.ceil(p / unit) * unit).toFixed(Math.max(0, 1 - e)))}%`;
}

/** 1 → "largest", 2 → "2nd largest", 13 → "13th largest". */
function ordinalLargest(n: number): string {
  if (n === 1) return 'largest';
  const teen = n % 100 >= 11 && n % 100 <= 13;
  const suffix = teen ? 'th' : ['th', 'st', 'nd', 'rd'][n % 10] ?? 'th';
  return `${n}${suffix} largest`;
}
