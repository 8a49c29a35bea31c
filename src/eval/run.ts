// One evaluation run, from parsed options to the files: discover the categories, expand the
// --set grid, group the configurations by detector, load each detector once, evaluate its
// configurations and write their overlays, plots, scores and the report (after every
// configuration, so a run that fails later keeps what it finished). With --shots / --calibrate
// each configuration runs once per seed on that seed's draw (protocol.ts, protocol-run.ts).
// scripts/eval.ts is the
// command line around it: it parses the arguments and prints what this returns or throws.
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { basename, extname, join, relative, resolve } from 'node:path';
import type { ClipDetector } from '../detection/clip-detector.ts';
import type { PromptChoice } from '../prompts/prompt-choice.ts';
import { checkpointIdentity, loadLearnedPrompts } from '../methods/dense-frequency/learned-prompts.ts';
import { loadSettings, SettingsError, type Settings } from '../settings.ts';
import { discoverCategories, type Category } from '../dataset/mvtec.ts';
import { evaluateConfiguration, extremesCount, scoreImageFile, REGION_THRESHOLD, type CategoryEvaluation, type ConfigurationEvaluation } from './evaluate.ts';
import { captionedOverlayPng, writeConfigurationPlots } from './plots.ts';
import { createProgress, type Progress } from './progress.ts';
import { buildReport, renderMarkdown, scoresCsv, type ConfigurationFiles, type OverlayFile, type RunInfo } from './report.ts';
import { splitAll, type CategorySplit } from './protocol.ts';
import { ProtocolSeed } from './protocol-run.ts';
import { expandGrid, forEachDetector, groupByDetector, parseSetFlags, type Configuration, type DetectorGroup } from './sweep.ts';

/** What the command line gives (scripts/eval.ts parses and checks the arguments). */
export interface EvalRunOptions {
  /** The dataset root (--data). */
  data: string;
  /** Category ids or folder names to keep (--categories); all when absent or empty. */
  only?: string[];
  /** Prompt names by category id or folder name (--names). */
  names?: Record<string, string>;
  /** At most this many images per category (--limit). */
  limit?: number;
  /** The --set flags, as given. */
  set?: string[];
  /** --model and --workers: override the MODEL and WORKERS settings. */
  model?: string;
  workers?: string;
  /** Output folder (--out); default out/eval-<date>-<time> in the working folder. */
  out?: string;
  /** The --prompts text as given (recorded in the report). */
  prompts: string;
  promptChoice: PromptChoice;
  /** A prompt file given by path (--prompts <file>.json): added to the detector's learned prompts. */
  promptFile?: string;
  pixelSize: number;
  /** Overlays per kind and category (--overlays). */
  overlaysPerKind: number;
  /** The command line, recorded in the report. */
  command: string;
  /** Settings come from here as for the service (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** The few-shot / calibration protocol: k references and m calibration normals per category, per seed. */
  protocol?: { shots: number; calibrate: number; seeds: number[]; targetFalseAlarmRate: number; confidence: number };
}

/** The checked inputs of a run: everything that can be wrong about the arguments is found here. */
export interface EvalPlan {
  options: EvalRunOptions;
  categories: Category[];
  configurations: Configuration[];
  groups: DetectorGroup[];
  baseSettings: Settings;
  /** With a protocol: each seed's draw of every category (seed-major, as options.protocol.seeds). */
  splits?: CategorySplit[][];
}

/**
 * Discovers the categories, expands the grid and reads the settings. Throws DatasetError,
 * SweepError or SettingsError for bad arguments (the command line reports them as such).
 */
export function planEval(options: EvalRunOptions): EvalPlan {
  const categories = discoverCategories(options.data, { only: options.only, names: options.names, limit: options.limit });
  const configurations = expandGrid(parseSetFlags(options.set ?? []));
  const baseSettings = loadSettings(options.env ?? process.env, settingOverrides(options));
  const splits = options.protocol ? splitAll(categories, options.protocol, options.protocol.seeds) : undefined;
  return { options, categories, configurations, groups: groupByDetector(configurations), baseSettings, ...(splits ? { splits } : {}) };
}

function settingOverrides(options: EvalRunOptions): Record<string, string> {
  return {
    ...(options.model !== undefined ? { model: options.model } : {}),
    ...(options.workers !== undefined ? { workers: options.workers } : {}),
  };
}

export interface EvalRunIo {
  /** A line for the operator (stderr); default: stderr, clearing a progress bar drawn there. */
  log?: (message: string) => void;
  /** Default: a bar on stderr. */
  progress?: (total: number) => Progress;
  /** Opens a detector; default createClipDetector (imported on first use: it takes a second to load). */
  createDetector?: (settings: Settings, log: (message: string) => void) => Promise<ClipDetector>;
  now?: () => Date;
  /**
   * Aborted when the run is interrupted (Ctrl-C): the report is written at once, synchronously,
   * saying which configurations are missing and why, so the caller may exit right after.
   */
  interrupted?: AbortSignal;
}

export interface EvalRunResult {
  outDir: string;
  reportFile: string;
  /** report.md's text. */
  markdown: string;
  totalMs: number;
}

/** A run that stopped: the configurations it finished are in the report (when there are any). */
export class EvalRunFailure extends Error {
  constructor(
    readonly error: unknown,
    /** Configurations finished (and in the report) before the failure. */
    readonly finished: number,
    readonly total: number,
    readonly reportFile: string,
  ) {
    super((error as Error).message, { cause: error });
    this.name = 'EvalRunFailure';
  }

  /** Nothing ran because the settings of the first detector were wrong: an argument error. */
  get isSettingsError(): boolean {
    return this.error instanceof SettingsError && this.finished === 0;
  }
}

function timestamp(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

function stderrLog(msg: string): void {
  process.stderr.write(`${process.stderr.isTTY ? '\r\x1b[K' : ''}${msg}\n`);
}

/** Runs a plan: report.json, report.md, scores, plots and overlays in the output folder. Throws EvalRunFailure. */
export async function runEval(plan: EvalPlan, io: EvalRunIo = {}): Promise<EvalRunResult> {
  const { options, categories, configurations, groups, baseSettings, splits } = plan;
  const protocol = options.protocol;
  const log = io.log ?? stderrLog;
  const startedAt = (io.now ?? (() => new Date()))();
  const outDir = resolve(options.out ?? join('out', `eval-${timestamp(startedAt)}`));
  const reportFile = join(outDir, 'report.json');
  const workers = baseSettings.workers;
  // Enough images in flight to keep every worker busy while the next ones decode.
  const concurrency = Math.max(2, 2 * workers);
  // Each seed's draw is a run of its own (test sets without the drawn images, references and calibration normals to score).
  const draws: CategorySplit[][] = splits ?? [categories.map((c) => ({ seed: 0, test: c, references: [], calibration: [], source: 'test/good' as const, calibrateRequested: 0 }))];
  const imagesPerConfig = categories.reduce((n, c) => n + c.images.length, 0);
  // Overlay images are scored again (the full-size maps are not kept), so they count as work too.
  const workPerConfig = draws
    .flat()
    .reduce((n, s) => n + s.test.images.length + extremesCount(s.test, options.overlaysPerKind) + s.references.length + s.calibration.length, 0);
  const total = workPerConfig * configurations.length;
  const runsTotal = configurations.length * draws.length;
  const progress = io.progress ? io.progress(total) : createProgress({ total });
  const rel = (file: string) => relative(outDir, file).split('\\').join('/');

  mkdirSync(outDir, { recursive: true });
  log(
    `eval: ${categories.length} categor${categories.length === 1 ? 'y' : 'ies'} (${categories.map((c) => c.id).join(', ')}), ` +
      `${imagesPerConfig} images, ${configurations.length} configuration(s)` +
      (protocol ? `, seeds ${protocol.seeds.join(',')} (k = ${protocol.shots} references, m = ${protocol.calibrate} calibration normals)` : '') +
      `, ${groups.length} model load(s) → ${outDir}`,
  );

  async function writeOverlays(detector: ClipDetector, evaluation: CategoryEvaluation, configuration: Configuration, memory?: unknown): Promise<OverlayFile[]> {
    const dir = join(outDir, 'overlays', configuration.id, evaluation.category.id);
    if (evaluation.extremes.length) mkdirSync(dir, { recursive: true });
    const files: OverlayFile[] = [];
    for (const e of evaluation.extremes) {
      // The overlay needs the full-size map, which the evaluation does not keep: score the image
      // again, unless its score depends on its batch (MuSc): then the evaluation kept it.
      const { decoded, outcome } =
        e.scored ??
        (await scoreImageFile(detector, e.image, evaluation.category.name, configuration.scoring, {
          maxPixels: baseSettings.maxPixels,
          prompts: options.promptChoice,
          method: configuration.method,
          memory,
        }));
      delete e.scored;
      const stem = basename(e.image.file, extname(e.image.file)).replace(/[^\w.-]+/g, '_');
      const file = join(dir, `${e.kind}-${e.rank}_${e.image.type.replace(/[^\w.-]+/g, '_')}_${stem}.png`);
      const caption = `${e.kind} #${e.rank}  score ${outcome.score.toFixed(3)}`; // short: images may be 100 px wide
      writeFileSync(file, await captionedOverlayPng(decoded, outcome.map, caption, { threshold: REGION_THRESHOLD, regions: outcome.regions }));
      files.push({ kind: e.kind, rank: e.rank, image: e.image.name, type: e.image.type, score: e.score, file: rel(file) });
      progress.tick();
    }
    return files;
  }

  /** A grid configuration as it runs: itself, or once per seed as `<id>-s<seed>` (label `… seed=<seed>`). */
  function runConfigurations(c: Configuration): Configuration[] {
    if (!protocol) return [c];
    return protocol.seeds.map((seed) => ({ ...c, id: `${c.id}-s${seed}`, label: `${c.label} seed=${seed}` }));
  }
  const seedIndex = (e: ConfigurationEvaluation) => (e.protocolSeed ? protocol!.seeds.indexOf(e.protocolSeed.seed) : 0);

  const evaluations: ConfigurationEvaluation[] = [];
  const files: Record<string, ConfigurationFiles> = {};
  const detectorLoads: RunInfo['detectorLoads'] = [];
  const started = performance.now();

  /**
   * report.json and report.md from the configurations done so far. Written after each one, so a
   * long sweep that fails or is interrupted keeps what it finished; the last write is the whole run.
   */
  function writeReport(error?: string): { markdown: string; totalMs: number } {
    // Grid order, whatever order the detector groups ran in.
    const order = (e: ConfigurationEvaluation) => configurations.findIndex((c) => c.id === (e.protocolSeed?.configuration ?? e.configuration.id)) * draws.length + seedIndex(e);
    evaluations.sort((a, b) => order(a) - order(b));
    const done = new Set(evaluations.map((e) => e.configuration.id));
    const pending = configurations.flatMap((c) => runConfigurations(c)).filter((c) => !done.has(c.id)).map((c) => c.id);
    const report = buildReport(
      {
        command: options.command,
        dataRoot: options.data,
        startedAt,
        pixelSize: options.pixelSize,
        workers,
        concurrency,
        totalMs: performance.now() - started,
        detectorLoads,
        prompts: options.prompts,
        ...(pending.length || error ? { incomplete: { pending, ...(error ? { error } : {}) } } : {}),
        ...(protocol ? { protocol: { ...protocol, fewShotWeight: baseSettings.fewShotWeight } } : {}),
      },
      categories,
      evaluations,
      files,
    );
    const markdown = renderMarkdown(report);
    // Each file replaced whole (write, then rename), so a reader never sees half a report.
    for (const [name, text] of [['report.json', `${JSON.stringify(report, null, 2)}\n`], ['report.md', markdown]] as const) {
      writeFileSync(join(outDir, `${name}.tmp`), text);
      renameSync(join(outDir, `${name}.tmp`), join(outDir, name));
    }
    return { markdown, totalMs: report.timings.totalMs };
  }

  io.interrupted?.addEventListener('abort', () => writeReport('interrupted (Ctrl-C) before it ended'), { once: true });

  const createDetector =
    io.createDetector ??
    (async (settings: Settings, detectorLog: (message: string) => void) => {
      const { createClipDetector } = await import('../detection/clip-detector.ts');
      return createClipDetector(settings, detectorLog);
    });

  try {
    await forEachDetector(
      groups,
      async (group) => {
        const t = performance.now();
        progress.status(`loading model ${group.detector.model ?? baseSettings.model}`);
        const settings = loadSettings(options.env ?? process.env, {
          ...settingOverrides(options),
          maxQueue: String(Math.max(baseSettings.maxQueue, concurrency)),
          ...group.detector,
        });
        const detector = await createDetector(settings, log);
        if (options.promptChoice.mode === 'learned') {
          try {
            // A file given by path joins PROMPTS_DIR's under its own name; either way it must fit this model.
            if (options.promptFile !== undefined) detector.learned.add(loadLearnedPrompts(options.promptFile, checkpointIdentity(detector.runtime)));
            detector.learned.resolve(options.promptChoice.name);
          } catch (err) {
            await detector.close();
            throw err;
          }
        }
        detectorLoads.push({ configurations: group.configurations.map((c) => c.id), detector: group.detector, ms: performance.now() - t });
        return detector;
      },
      async (detector, group) => {
        for (const [configuration, draw, base] of group.configurations.flatMap((c) => runConfigurations(c).map((rc, i) => [rc, i, c] as const))) {
          const overlays: Record<string, OverlayFile[]> = {};
          const evaluateOptions = {
            pixelSize: options.pixelSize,
            concurrency,
            maxPixels: baseSettings.maxPixels,
            extremes: options.overlaysPerKind,
            prompts: options.promptChoice,
            progress,
          };
          let evaluation: ConfigurationEvaluation;
          if (protocol) {
            const seed = protocol.seeds[draw];
            const run = new ProtocolSeed(detector, seed, draws[draw], configuration, protocol, evaluateOptions);
            evaluation = await run.evaluate(async (c) => {
              overlays[c.category.id] = await writeOverlays(detector, c, configuration, run.memoryOf(c.category.id));
            });
            evaluation.protocolSeed = { seed, configuration: base.id, label: base.label };
          } else {
            evaluation = await evaluateConfiguration(detector, categories, configuration, {
              ...evaluateOptions,
              onCategory: async (c) => {
                overlays[c.category.id] = await writeOverlays(detector, c, configuration);
              },
            });
          }
          const scores = join(outDir, `scores-${configuration.id}.csv`);
          writeFileSync(scores, scoresCsv(evaluation));
          const plots = await writeConfigurationPlots(join(outDir, 'plots', configuration.id), evaluation, runsTotal > 1 ? ` (${configuration.id})` : '');
          files[configuration.id] = { plots: plots.map(rel), overlays, scores: rel(scores) };
          evaluations.push(evaluation);
          if (evaluations.length < runsTotal) writeReport();
        }
      },
    );
  } catch (err) {
    progress.done();
    const failure = new EvalRunFailure(err, evaluations.length, runsTotal, reportFile);
    if (evaluations.length) writeReport(failure.message);
    throw failure;
  }
  progress.done();

  const { markdown, totalMs } = writeReport();
  return { outDir, reportFile, markdown, totalMs };
}
