// The evaluation report: one JSON document (settings, model, dataset, per-category and mean
// metrics, timings, file list), a Markdown rendering of it (a table per configuration and a
// comparison table for sweeps), and per-image scores as CSV. Numbers from a generated
// random-weight model carry a bold warning wherever they are shown.
import { availableParallelism, cpus, platform } from 'node:os';
import type { ModelInfo } from '../detection/types.ts';
import type { ScoringSettings } from '../methods/dense-frequency/pipeline.ts';
import { describeCategory, type Category } from '../dataset/mvtec.ts';
import { buildProtocolReport, calibrationMarkdown, protocolMarkdown, type ProtocolInfo, type ProtocolReport } from './protocol-report.ts';
import type { CategoryProtocol } from './protocol.ts';
import { METRIC_KEYS, METRIC_TITLES, type CategoryEvaluation, type CategoryMetrics, type ConfigurationEvaluation, type MeanMetrics, type MetricKey } from './evaluate.ts';

export const REPORT_VERSION = 1;
export const RANDOM_MODEL_WARNING = '**Generated model with random weights: these numbers measure nothing about detection quality.**';

export interface OverlayFile {
  kind: string;
  rank: number;
  image: string;
  type: string;
  score: number;
  file: string;
}

/** Files written for one configuration, relative to the output folder. */
export interface ConfigurationFiles {
  plots: string[];
  overlays: Record<string, OverlayFile[]>;
  scores: string;
}

export interface RunInfo {
  command: string;
  dataRoot: string;
  startedAt: Date;
  pixelSize: number;
  workers: number;
  concurrency: number;
  totalMs: number;
  detectorLoads: { configurations: string[]; detector: Record<string, string>; ms: number }[];
  /** The --prompts choice as given (templated, learned, learned:<name> or a file); default templated. */
  prompts?: string;
  /** Set while the run is still going or after it failed: what is missing and why. */
  incomplete?: Incomplete;
  /** The few-shot / calibration protocol (--shots, --calibrate, --seed). */
  protocol?: ProtocolInfo;
}

/** A report written before every configuration finished: during the run, or after a failure. */
export interface Incomplete {
  /** Configuration ids not (yet) in the report. */
  pending: string[];
  /** Why the run stopped; absent while it is still running. */
  error?: string;
}

export interface CategoryReport {
  id: string;
  name: string;
  images: number;
  good: number;
  defective: number;
  pixelImages: number;
  metrics: CategoryMetrics;
  notes: string[];
  timings: CategoryEvaluation['timings'] & { imagesPerSecond: number };
  overlays: OverlayFile[];
  /** The protocol's draw (seed, source, references) and calibration of this category. */
  protocol?: CategoryProtocol;
}

export interface ConfigurationReport {
  id: string;
  label: string;
  set: Record<string, string>;
  model: ModelInfo;
  settings: {
    scoring: ScoringSettings;
    detector: { inputSize: number; denseLayers: number[]; denseStart: number; denseAttention: string };
  };
  categories: CategoryReport[];
  mean: MeanMetrics;
  files: { plots: string[]; scores: string };
  timings: ConfigurationEvaluation['timings'];
}

export interface EvalReport {
  tool: 'clip-anomaly-eval';
  reportVersion: number;
  createdAt: string;
  command: string;
  generatedRandomModel: boolean;
  warning?: string;
  dataset: { root: string; categories: ReturnType<typeof describeCategory>[] };
  method: {
    prompts: string;
    pixelSize: number;
    mapResize: string;
    maskResize: string;
    imageScore: string;
    mean: string;
    aupro: string;
    curves: string;
  };
  machine: { node: string; platform: string; cpus: number; cpuModel: string; workers: number; concurrency: number };
  configurations: ConfigurationReport[];
  timings: { totalMs: number; detectorLoads: RunInfo['detectorLoads'] };
  incomplete?: Incomplete;
  protocol?: ProtocolReport;
}

const round = (v: number, digits = 6) => Math.round(v * 10 ** digits) / 10 ** digits;

function roundMetrics<T extends object>(m: T): T {
  return Object.fromEntries(Object.entries(m).map(([k, v]) => [k, typeof v === 'number' ? round(v) : v])) as T;
}

export function buildReport(run: RunInfo, categories: readonly Category[], evaluations: readonly ConfigurationEvaluation[], files: Record<string, ConfigurationFiles>): EvalReport {
  const generated = evaluations.some((e) => e.model.generatedRandomModel);
  const configurations: ConfigurationReport[] = evaluations.map((e) => {
    const f = files[e.configuration.id] ?? { plots: [], overlays: {}, scores: '' };
    return {
      id: e.configuration.id,
      label: e.configuration.label,
      set: e.configuration.set,
      model: e.model,
      settings: {
        scoring: e.configuration.scoring,
        detector: { inputSize: e.model.inputSize, denseLayers: e.model.denseLayers, denseStart: e.model.denseStart, denseAttention: e.model.denseAttention },
      },
      categories: e.categories.map((c) => ({
        id: c.category.id,
        name: c.category.name,
        images: c.images,
        good: c.good,
        defective: c.defective,
        pixelImages: c.pixelImages,
        metrics: roundMetrics(c.metrics),
        notes: c.notes,
        timings: roundMetrics({ ...c.timings, imagesPerSecond: c.images / Math.max(c.timings.wallMs / 1000, 1e-9) }),
        overlays: f.overlays[c.category.id] ?? [],
        ...(c.protocol ? { protocol: c.protocol } : {}),
      })),
      mean: { ...roundMetrics(e.mean), counts: e.mean.counts },
      files: { plots: f.plots, scores: f.scores },
      timings: roundMetrics(e.timings),
    };
  });
  return {
    tool: 'clip-anomaly-eval',
    reportVersion: REPORT_VERSION,
    createdAt: run.startedAt.toISOString(),
    command: run.command,
    generatedRandomModel: generated,
    ...(generated ? { warning: RANDOM_MODEL_WARNING.replace(/\*\*/g, '') } : {}),
    dataset: { root: run.dataRoot, categories: categories.map(describeCategory) },
    method: {
      prompts: run.prompts ?? 'templated',
      pixelSize: run.pixelSize,
      mapResize: `fused map at the image size resized bilinearly (align_corners=false) to ${run.pixelSize}×${run.pixelSize}`,
      maskResize: `mask resized nearest-neighbour to ${run.pixelSize}×${run.pixelSize}; value > 127 = defect`,
      imageScore: 'the score the service returns (ClipDetector.scoreDecoded)',
      mean: 'macro mean over the categories where a metric is defined (method.md §7)',
      aupro: 'exact, every distinct map value a threshold; 8-connected components over all images; PRO integrated over FPR 0..0.3 / 0.3',
      curves: 'image ROC exact; pixel ROC and PRO plots binned over 1024 score levels (plots only)',
    },
    machine: {
      node: process.version,
      platform: platform(),
      cpus: availableParallelism(),
      cpuModel: cpus()[0]?.model ?? 'unknown',
      workers: run.workers,
      concurrency: run.concurrency,
    },
    configurations,
    timings: { totalMs: round(run.totalMs, 1), detectorLoads: run.detectorLoads.map((d) => ({ ...d, ms: round(d.ms, 1) })) },
    ...(run.incomplete ? { incomplete: run.incomplete } : {}),
    ...(run.protocol ? { protocol: buildProtocolReport(run.protocol, evaluations) } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// Markdown

/** Percent with one decimal, as the papers print them; "–" where undefined. */
function pct(v: number | null): string {
  return v === null ? '–' : (v * 100).toFixed(1);
}

function seconds(ms: number): string {
  return (ms / 1000).toFixed(1);
}

function escapeCell(text: string): string {
  return text.replace(/\|/g, '\\|');
}

function describeModel(m: ModelInfo): string {
  const kind = m.generatedRandomModel ? 'generated random weights' : m.source === 'hub' ? 'Hugging Face Hub' : 'local checkpoint';
  return `\`${m.id}\` (${kind}; input ${m.inputSize} px, patch grid ${m.grid}×${m.grid}, dense layers ${m.denseLayers.join(',')} from block ${m.denseStart}, attention ${m.denseAttention})`;
}

function metricsTable(c: ConfigurationReport): string[] {
  const head = ['category', 'good', 'defective', ...METRIC_KEYS.map((k) => METRIC_TITLES[k]), 'time (s)'];
  const rows = [
    `| ${head.join(' | ')} |`,
    `|${head.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`,
    ...c.categories.map(
      (cat) => `| ${escapeCell(cat.id)} | ${cat.good} | ${cat.defective} | ${METRIC_KEYS.map((k) => pct(cat.metrics[k])).join(' | ')} | ${seconds(cat.timings.wallMs)} |`,
    ),
  ];
  const good = c.categories.reduce((n, x) => n + x.good, 0);
  const defective = c.categories.reduce((n, x) => n + x.defective, 0);
  rows.push(`| **mean** | ${good} | ${defective} | ${METRIC_KEYS.map((k) => `**${pct(c.mean[k])}**`).join(' | ')} | ${seconds(c.timings.wallMs)} |`);
  return rows;
}

function comparisonTable(configs: readonly ConfigurationReport[]): string[] {
  const head = ['config', 'settings', ...METRIC_KEYS.map((k) => `mean ${METRIC_TITLES[k]}`), 'time (s)'];
  // The best value of each column in bold, to read a sweep at a glance.
  const best = Object.fromEntries(
    METRIC_KEYS.map((k) => [k, Math.max(...configs.map((c) => c.mean[k] ?? -Infinity))]),
  ) as Record<MetricKey, number>;
  return [
    `| ${head.join(' | ')} |`,
    `|---|---|${METRIC_KEYS.map(() => '---:').join('|')}|---:|`,
    ...configs.map((c) => {
      const cells = METRIC_KEYS.map((k) => {
        const v = c.mean[k];
        return v !== null && v === best[k] && configs.length > 1 ? `**${pct(v)}**` : pct(v);
      });
      return `| ${c.id} | ${escapeCell(c.label)} | ${cells.join(' | ')} | ${seconds(c.timings.wallMs)} |`;
    }),
  ];
}

export function renderMarkdown(report: EvalReport): string {
  const configs = report.configurations;
  const images = report.dataset.categories.reduce((n, c) => n + c.images, 0);
  // One line per distinct model / graph setting, naming its configurations when there are several.
  const models = new Map<string, { model: ModelInfo; ids: string[] }>();
  for (const c of configs) {
    const key = JSON.stringify(c.model);
    if (!models.has(key)) models.set(key, { model: c.model, ids: [] });
    models.get(key)!.ids.push(c.id);
  }
  const lines: string[] = ['# Anomaly detection evaluation', ''];
  if (report.generatedRandomModel) lines.push(RANDOM_MODEL_WARNING, '');
  if (report.incomplete) {
    const missing = report.incomplete.pending.join(', ');
    lines.push(
      report.incomplete.error
        ? `**Incomplete run: it ${report.incomplete.error.startsWith('interrupted') ? `was ${report.incomplete.error}` : `stopped with an error (${report.incomplete.error})`}; ${missing || 'nothing'} ${report.incomplete.pending.length > 1 ? 'are' : 'is'} missing below.**`
        : `**Run in progress: ${missing} ${report.incomplete.pending.length === 1 ? 'is' : 'are'} still to come.**`,
      '',
    );
  }
  lines.push(
    `- Command: \`${report.command}\``,
    ...[...models.values()].map(({ model, ids }) => `- Model${models.size > 1 ? ` (${ids.join(', ')})` : ''}: ${describeModel(model)}`),
    `- Data: \`${report.dataset.root}\`: ${report.dataset.categories.length} categor${report.dataset.categories.length === 1 ? 'y' : 'ies'}, ${images} images`,
    `- Prompts: ${report.method.prompts}; pixel metrics at ${report.method.pixelSize}×${report.method.pixelSize} (map bilinear, mask nearest)`,
    `- Run: ${configs.length} configuration${configs.length === 1 ? '' : 's'}, ${seconds(report.timings.totalMs)} s in total on ${report.machine.cpus} CPUs (${report.machine.cpuModel}), ${report.machine.workers} worker(s); ${report.createdAt}`,
    '',
    'Metrics in % (method.md §7). **mean** is the macro mean over the categories where a metric is defined; – means undefined (no masks, or one class only).',
    '',
  );
  if (report.protocol) lines.push(...protocolMarkdown(report.protocol));
  if (configs.length > 1) {
    lines.push(report.protocol ? '## Per seed' : '## Sweep comparison', '', ...comparisonTable(configs), '');
  }
  for (const c of configs) {
    lines.push(configs.length > 1 ? `## ${c.id}: ${c.label}` : '## Results', '');
    if (configs.length === 1 && Object.keys(c.set).length) lines.push(`Settings: \`${c.label}\``, '');
    lines.push(...metricsTable(c), '');
    const notes = c.categories.flatMap((cat) => cat.notes.map((n) => `- ${cat.id}: ${n}`));
    if (notes.length) lines.push('Notes:', '', ...notes, '');
    lines.push(...calibrationMarkdown(c.categories));
    if (c.files.plots.length) lines.push(c.files.plots.map((p) => `![${p}](${p})`).join(' '), '');
    const overlays = c.categories.filter((cat) => cat.overlays.length);
    if (overlays.length) {
      lines.push('Overlays (detected = highest-scored defects, missed = lowest-scored defects, false-alarm = highest-scored good images):', '');
      for (const cat of overlays) {
        lines.push(`- ${cat.id}: ${cat.overlays.map((o) => `[${o.kind} ${o.rank} (${o.score.toFixed(3)})](${o.file})`).join(', ')}`);
      }
      lines.push('');
    }
    lines.push(`Per-image scores: [${c.files.scores}](${c.files.scores})`, '');
  }
  return `${lines.join('\n').trimEnd()}\n`;
}

/** One row per image: configuration, category, image, type, label, score, image probability. */
export function scoresCsv(evaluation: ConfigurationEvaluation): string {
  const quote = (s: string) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
  const rows = ['config,category,image,type,label,score,p_image'];
  for (const c of evaluation.categories) {
    for (const r of c.records) {
      rows.push([evaluation.configuration.id, quote(c.category.id), quote(r.name), quote(r.type), r.label, round(r.score, 8), round(r.pImage, 8)].join(','));
    }
  }
  return `${rows.join('\n')}\n`;
}
