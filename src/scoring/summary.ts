// One plain sentence per result, for a ticketing bot or a log line, e.g.
// "metal plate: anomalous (score 0.83 ≥ threshold 0.50); 2 suspect regions, largest at
// x=120,y=40 (64×32 px, 0.8% of the image)."

import type { Region } from './regions.ts';

export interface SummaryInput {
  category: string;
  score: number;
  threshold: number;
  isAnomalous: boolean;
  regions: Region[];
  width: number;
  height: number;
  /** Where the threshold came from: said in the sentence when it is not the caller's own. */
  thresholdSource?: 'request' | 'category calibration' | 'default';
  /** With a default threshold: why the category's calibration was not used ("the category's calibration is out of date"). */
  thresholdNote?: string;
  /** What the score means beyond its value ("relative to this batch" for MuSc's batch-ranked scores). */
  scoreNote?: string;
}

/**
 * Score, relation and threshold: 2 decimals, or more (up to 6) when fewer would print them
 * equal; still equal at 6 (a score a hair below a calibrated threshold, which sits just above a
 * normal score), the relation says "just below" / "just above" instead of "<" / "≥".
 */
function formatPair(score: number, threshold: number): [string, string, string] {
  const relation = score >= threshold ? '≥' : '<';
  for (const digits of [2, 3, 4, 5, 6]) {
    const s = score.toFixed(digits);
    const t = threshold.toFixed(digits);
    if (s !== t || score === threshold) return [s, relation, t];
  }
  const t = threshold.toFixed(6);
  return [t, score < threshold ? 'just below' : 'just above', t];
}

function formatPercent(fraction: number): string {
  const pct = fraction * 100;
  if (pct > 0 && pct < 0.1) return '<0.1%';
  return `${pct.toFixed(1)}%`;
}

/** "2 suspect regions, largest at x=…" or "1 suspect region at x=…". */
function describeRegions(regions: Region[], adjective: string, imagePixels: number): string {
  let largest = regions[0];
  for (const r of regions) if (r.area > largest.area) largest = r;
  const { x, y, w, h } = largest.bbox;
  const count = regions.length;
  const head = count === 1 ? `1 ${adjective} region at` : `${count} ${adjective} regions, largest at`;
  return `${head} x=${x},y=${y} (${w}×${h} px, ${formatPercent(imagePixels > 0 ? largest.area / imagePixels : largest.areaFraction)} of the image)`;
}

/** A one-sentence verdict; the region percentage is area / (width · height). */
export function summarize(input: SummaryInput): string {
  const { score, threshold, isAnomalous, regions } = input;
  const pixels = input.width * input.height;
  const name = input.category.trim().length > 0 ? input.category.trim() : 'image';
  const [s, relation, t] = formatPair(score, threshold);
  const verdict = isAnomalous ? 'anomalous' : 'looks normal';
  const kind = input.thresholdSource === 'category calibration' ? 'calibrated threshold' : 'threshold';
  const note = input.thresholdSource !== 'default' ? '' : input.thresholdNote ? `, default: ${input.thresholdNote}` : ', default, not calibrated for this category';
  const scoreNote = input.scoreNote ? `, ${input.scoreNote}` : '';
  let sentence = `${name}: ${verdict} (score ${s} ${relation} ${kind} ${t}${note}${scoreNote})`;
  if (isAnomalous) {
    sentence += regions.length === 0 ? '; no localized suspect region' : `; ${describeRegions(regions, 'suspect', pixels)}`;
  } else if (regions.length > 0) {
    // A normal verdict while the map still crosses the threshold somewhere: worth a look.
    sentence += `; ${describeRegions(regions, 'weak suspect', pixels)}`;
  }
  return `${sentence}.`;
}
