// The report's protocol part (`--shots`, `--calibrate`, `--seed`): what was drawn from where,
// and the metrics' spread over the seeds (mean, sample standard deviation, min, max) per
// category and for the macro mean; for calibration, the threshold, its guarantee and the
// realised false-alarm and miss rates. report.ts puts it into report.json and report.md.
import { METRIC_KEYS, METRIC_TITLES, type ConfigurationEvaluation, type MetricKey } from './evaluate.ts';
import type { CategoryCalibration } from './calibrate.ts';

/** The protocol as the command line asked for it. */
export interface ProtocolInfo {
  shots: number;
  seeds: number[];
  calibrate: number;
  targetFalseAlarmRate: number;
  confidence: number;
  /** FEWSHOT_WEIGHT of the detector (the dense-frequency method's few-shot weight). */
  fewShotWeight: number;
}

export interface Spread {
  mean: number;
  /** Sample standard deviation (n − 1); 0 for a single value. */
  std: number;
  min: number;
  max: number;
  /** Seeds the values are over (where the metric is defined). */
  n: number;
}

export interface ProtocolSummary {
  configuration: string;
  label: string;
  /** Ids of the per-seed configurations in the report. */
  runs: string[];
  categories: Array<{ id: string; metrics: Record<MetricKey, Spread | null>; falseAlarmRate?: Spread | null; missRate?: Spread | null }>;
  mean: Record<MetricKey, Spread | null>;
}

export interface ProtocolReport extends ProtocolInfo {
  references: string;
  sources: Record<string, string>;
  spread: string;
  calibrationRule?: string;
  summaries: ProtocolSummary[];
}

const round = (v: number) => Math.round(v * 1e6) / 1e6;

export function spreadOf(values: ReadonlyArray<number | null | undefined>): Spread | null {
  const v = values.filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
  if (v.length === 0) return null;
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  const std = v.length > 1 ? Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (v.length - 1)) : 0;
  return { mean: round(mean), std: round(std), min: round(Math.min(...v)), max: round(Math.max(...v)), n: v.length };
}

function metricSpreads(values: Array<Partial<Record<MetricKey, number | null>>>): Record<MetricKey, Spread | null> {
  return Object.fromEntries(METRIC_KEYS.map((k) => [k, spreadOf(values.map((m) => m[k]))])) as Record<MetricKey, Spread | null>;
}

const calibrationOf = (c: { protocol?: { calibration?: CategoryCalibration } }) => c.protocol?.calibration;

/** The protocol part of report.json, from the per-seed evaluations (grouped by their grid configuration). */
export function buildProtocolReport(info: ProtocolInfo, evaluations: readonly ConfigurationEvaluation[]): ProtocolReport {
  const groups = new Map<string, ConfigurationEvaluation[]>();
  for (const e of evaluations) {
    const id = e.protocolSeed?.configuration ?? e.configuration.id;
    groups.set(id, [...(groups.get(id) ?? []), e]);
  }
  const sources: Record<string, string> = {};
  for (const e of evaluations) for (const c of e.categories) if (c.protocol) sources[c.category.id] = c.protocol.source;
  const summaries: ProtocolSummary[] = [...groups].map(([configuration, runs]) => {
    const ids = [...new Set(runs.flatMap((r) => r.categories.map((c) => c.category.id)))];
    return {
      configuration,
      label: runs[0].protocolSeed?.label ?? runs[0].configuration.label,
      runs: runs.map((r) => r.configuration.id),
      categories: ids.map((id) => {
        const per = runs.map((r) => r.categories.find((c) => c.category.id === id)).filter((c) => c !== undefined);
        const cals = per.map(calibrationOf).filter((c) => c !== undefined);
        const oks = cals.filter((c) => c.ok);
        return {
          id,
          metrics: metricSpreads(per.map((c) => c.metrics)),
          ...(cals.length ? { falseAlarmRate: spreadOf(oks.map((c) => c.falseAlarms.rate)), missRate: spreadOf(oks.map((c) => c.misses.rate)) } : {}),
        };
      }),
      mean: metricSpreads(runs.map((r) => r.mean)),
    };
  });
  return {
    ...info,
    references:
      info.shots > 0
        ? `${info.shots} reference(s) per category and seed, drawn from train/good when the category has it, else from the test set's good images (then excluded from the test set); memory built as the service builds a stored category's (the method's ReferenceMemory)`
        : 'none (zero-shot)',
    sources,
    spread: 'over the seeds: mean, sample standard deviation (n − 1; 0 for one seed), min and max; the macro row is the spread of the per-seed macro means',
    ...(info.calibrate > 0
      ? {
          calibrationRule: `${info.calibrate} held-out normal image(s) per category and seed (after the references, same pool, excluded from the test set), scored as the service scores; threshold = calibrateThreshold(scores, α = ${info.targetFalseAlarmRate}, confidence ${info.confidence}); anomalous ⇔ score ≥ threshold, applied to the remaining images`,
        }
      : {}),
    summaries,
  };
}

// ---------------------------------------------------------------------------------------------
// Markdown

const pct = (v: number | null | undefined) => (v === null || v === undefined ? '–' : (v * 100).toFixed(1));

/** "71.2 ± 3.4 (68.0–74.9)" in %; "–" where undefined. */
export function formatSpread(s: Spread | null | undefined): string {
  if (!s) return '–';
  return s.n > 1 ? `${pct(s.mean)} ± ${pct(s.std)} (${pct(s.min)}–${pct(s.max)})` : pct(s.mean);
}

/** The protocol statement and the over-seeds tables. */
export function protocolMarkdown(p: ProtocolReport): string[] {
  const lines = ['## Protocol', ''];
  lines.push(`- Seeds: ${p.seeds.join(', ')}`);
  lines.push(`- References (k = ${p.shots}): ${p.references}`);
  if (p.shots > 0) lines.push(`- Few-shot weight (FEWSHOT_WEIGHT, dense-frequency): ${p.fewShotWeight}`);
  const bySource = new Map<string, string[]>();
  for (const [id, s] of Object.entries(p.sources)) bySource.set(s, [...(bySource.get(s) ?? []), id]);
  for (const [s, ids] of bySource) lines.push(`- Drawn from ${s}: ${ids.join(', ')}`);
  if (p.calibrationRule) lines.push(`- Calibration (m = ${p.calibrate}): ${p.calibrationRule}`);
  lines.push(`- Spread: ${p.spread}`, '');
  for (const s of p.summaries) {
    lines.push(p.summaries.length > 1 ? `### Over seeds: ${s.configuration} (${s.label})` : '### Over seeds', '');
    const head = ['category', ...METRIC_KEYS.map((k) => METRIC_TITLES[k])];
    const cal = s.categories.some((c) => c.falseAlarmRate !== undefined);
    if (cal) head.push('realised FAR', 'miss rate');
    lines.push(`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`);
    for (const c of s.categories) {
      const cells = [c.id, ...METRIC_KEYS.map((k) => formatSpread(c.metrics[k]))];
      if (cal) cells.push(formatSpread(c.falseAlarmRate), formatSpread(c.missRate));
      lines.push(`| ${cells.join(' | ')} |`);
    }
    lines.push(`| **mean** | ${METRIC_KEYS.map((k) => `**${formatSpread(s.mean[k])}**`).join(' | ')}${cal ? ' | | |' : ''}`, '');
  }
  return lines;
}

/** Per-seed calibration lines of one configuration's categories (threshold, guarantee, realised rates, or why not). */
export function calibrationMarkdown(categories: ReadonlyArray<{ id: string; protocol?: { calibration?: CategoryCalibration } }>): string[] {
  const rows = categories.filter((c) => calibrationOf(c));
  if (!rows.length) return [];
  const lines = ['Calibration:', ''];
  for (const c of rows) {
    const k = calibrationOf(c)!;
    if (!k.ok) {
      lines.push(`- ${c.id}: **not calibrated**: ${k.message}`);
      continue;
    }
    const r = (x: { count: number; of: number; rate: number | null }) => `${pct(x.rate)}% (${x.count}/${x.of})`;
    lines.push(
      `- ${c.id}: m = ${k.m}, threshold ${k.threshold.toFixed(6)}, confidence ${k.confidence} (achieved ${k.achievedConfidence.toFixed(4)}); ` +
        `realised false-alarm rate ${r(k.falseAlarms)}, miss rate ${r(k.misses)}. Guarantee: ${k.guarantee}`,
    );
  }
  return [...lines, ''];
}
