// Evaluation tool: scores MVTec-layout data with the service's own detector and writes a report.
// Usage: npm run eval -- --data <root> [options]   (npm run eval -- --help for all of them)
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { basename, extname, join, relative, resolve } from 'node:path';
import { createCli } from './cli.ts';
import type { ClipDetector } from '../src/detection/clip-detector.ts';
import type { PromptChoice } from '../src/detection/types.ts';
import { DatasetError, discoverCategories } from '../src/eval/dataset.ts';
import { DEFAULT_PIXEL_SIZE, evaluateConfiguration, extremesCount, scoreImageFile, type CategoryEvaluation, type ConfigurationEvaluation } from '../src/eval/evaluate.ts';
import { captionedOverlayPng, writeConfigurationPlots } from '../src/eval/plots.ts';
import { createProgress } from '../src/eval/progress.ts';
import { checkpointIdentity, loadLearnedPrompts, readLearnedPromptsFile } from '../src/methods/dense-frequency/learned-prompts.ts';
import { buildReport, renderMarkdown, scoresCsv, type ConfigurationFiles, type OverlayFile, type RunInfo } from '../src/eval/report.ts';
import { expandGrid, forEachDetector, groupByDetector, knownSetKeys, parseSetFlags, SweepError, type Configuration } from '../src/eval/sweep.ts';
import { loadSettings, SettingsError, type Settings } from '../src/settings.ts';

const USAGE = `usage: npm run eval -- --data <root> [options]

Scores every test image of MVTec-layout folders with the service's detector and writes
report.json, report.md, ROC/PRO plots and overlays of the best and worst scored images.

  --data DIR            dataset root: <category>/test/<good|type>/*, <category>/ground_truth/<type>/<stem>_mask.png;
                        nested roots (e.g. ../shared/data with <dataset>/<category>) are searched
  --categories A,B      only these categories (id like mpdd/metal_plate, or the folder name)
  --model M             Hugging Face repo id or local checkpoint folder (default: the service's MODEL
                        setting). Offline on this machine: --model models/demo-tiny, made with
                        npm run make-model -- --arch tiny --seed 1 --out models/demo-tiny
  --set KEY=V1[,V2…]    settings sweep; repeated flags multiply into a grid. Values that are lists
                        use + (or a quoted |): denseLayers=6+9+12,9+12  fusion=0.4+0.3+0.3,1+0+0
                        keys: ${knownSetKeys().join(', ')}
  --names A=NAME,…      category name used in the prompts (default: folder name, _ → space)
  --out DIR             output folder (default: out/eval-<date>-<time>)
  --prompts P           templated (default: the WinCLIP ensemble with the category name), learned
                        (PROMPTS_DIR's default.json, or its only file), learned:<name> (PROMPTS_DIR/<name>.json)
                        or the path of a prompt file written by npm run train
  --pixel-size N        side of the grid the pixel metrics use (default ${DEFAULT_PIXEL_SIZE})
  --overlays N          overlays per kind (detected, missed, false-alarm) and category (default 3; 0 = none)
  --limit N             at most N images per category, good and defective in proportion (quick runs)
  --workers N           inference worker threads (default: the WORKERS setting)
  -h, --help            this text

Other settings (MODEL_CACHE_DIR, HF_HUB_OFFLINE, HF_TOKEN, …) come from the environment as for
the service. Progress goes to stderr; the summary table to stdout.`;

const cli = createCli('eval', USAGE, '\n\nRun npm run eval -- --help for the options.');
// Annotated, so TypeScript knows a call never returns.
const fail: (message: string) => never = cli.fail;

function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

function timestamp(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

const argv = process.argv.slice(2);
const values = cli.parse(argv, {
  data: { type: 'string' },
  categories: { type: 'string' },
  model: { type: 'string' },
  set: { type: 'string', multiple: true, default: [] },
  names: { type: 'string', multiple: true, default: [] },
  out: { type: 'string' },
  prompts: { type: 'string', default: 'templated' },
  'pixel-size': { type: 'string' },
  overlays: { type: 'string' },
  limit: { type: 'string' },
  workers: { type: 'string' },
});
// Learned prompts are checked against the model once it is loaded; the syntax and a file's format now.
const promptFile = /^(templated|learned(:[A-Za-z0-9][A-Za-z0-9._-]{0,63})?)$/.test(values.prompts) ? undefined : resolve(values.prompts);
if (promptFile !== undefined) {
  if (!promptFile.toLowerCase().endsWith('.json')) fail(`--prompts ${values.prompts}: expected templated, learned, learned:<name> or the path of a prompt file (.json)`);
  try {
    readLearnedPromptsFile(promptFile);
  } catch (err) {
    fail((err as Error).message);
  }
}
const promptChoice: PromptChoice =
  promptFile !== undefined
    ? { mode: 'learned', name: basename(promptFile, extname(promptFile)) }
    : values.prompts === 'templated'
      ? { mode: 'templated' }
      : { mode: 'learned', ...(values.prompts.includes(':') ? { name: values.prompts.slice(values.prompts.indexOf(':') + 1) } : {}) };
const dataRoot = values.data ?? fail('--data is required (the folder that holds the categories)');
const pixelSize = cli.wholeNumber('pixel-size', values['pixel-size'], DEFAULT_PIXEL_SIZE, 16);
const overlaysPerKind = cli.wholeNumber('overlays', values.overlays, 3, 0);
const limit = values.limit === undefined ? undefined : cli.wholeNumber('limit', values.limit, 0, 2);

let categories: ReturnType<typeof discoverCategories>;
let configurations: ReturnType<typeof expandGrid>;
let baseSettings: Settings;
try {
  categories = discoverCategories(dataRoot, {
    only: values.categories?.split(',').map((c) => c.trim()),
    names: cli.names(values.names),
    limit,
  });
  configurations = expandGrid(parseSetFlags(values.set));
  baseSettings = loadSettings(process.env, {
    ...(values.model !== undefined ? { model: values.model } : {}),
    ...(values.workers !== undefined ? { workers: values.workers } : {}),
  });
} catch (err) {
  if (err instanceof DatasetError || err instanceof SweepError || err instanceof SettingsError) fail(err.message);
  throw err;
}

const startedAt = new Date();
const outDir = resolve(values.out ?? join('out', `eval-${timestamp(startedAt)}`));
const workers = baseSettings.workers;
// Enough images in flight to keep every worker busy while the next ones decode.
const concurrency = Math.max(2, 2 * workers);
const groups = groupByDetector(configurations);
const imagesPerConfig = categories.reduce((n, c) => n + c.images.length, 0);
// Overlay images are scored again (the full-size maps are not kept), so they count as work too.
const overlaysPerConfig = categories.reduce((n, c) => n + extremesCount(c, overlaysPerKind), 0);
const progress = createProgress({ total: (imagesPerConfig + overlaysPerConfig) * configurations.length });
const log = (msg: string) => process.stderr.write(`${process.stderr.isTTY ? '\r\x1b[K' : ''}${msg}\n`);
const rel = (file: string) => relative(outDir, file).split('\\').join('/');

mkdirSync(outDir, { recursive: true });
log(
  `eval: ${categories.length} categor${categories.length === 1 ? 'y' : 'ies'} (${categories.map((c) => c.id).join(', ')}), ` +
    `${imagesPerConfig} images, ${configurations.length} configuration(s), ${groups.length} model load(s) → ${outDir}`,
);

async function writeOverlays(detector: ClipDetector, evaluation: CategoryEvaluation, configuration: Configuration): Promise<OverlayFile[]> {
  const configId = configuration.id;
  const dir = join(outDir, 'overlays', configId, evaluation.category.id);
  if (evaluation.extremes.length) mkdirSync(dir, { recursive: true });
  const files: OverlayFile[] = [];
  for (const e of evaluation.extremes) {
    // The overlay needs the full-size map, which the evaluation does not keep: score the image again.
    const { decoded, outcome } = await scoreImageFile(detector, e.image, evaluation.category.name, configuration.scoring, {
      maxPixels: baseSettings.maxPixels,
      prompts: promptChoice,
      method: configuration.method,
    });
    const stem = basename(e.image.file, extname(e.image.file)).replace(/[^\w.-]+/g, '_');
    const file = join(dir, `${e.kind}-${e.rank}_${e.image.type.replace(/[^\w.-]+/g, '_')}_${stem}.png`);
    const caption = `${e.kind} #${e.rank}  score ${outcome.score.toFixed(3)}`; // short: images may be 100 px wide
    writeFileSync(file, await captionedOverlayPng(decoded, outcome.map, caption));
    files.push({ kind: e.kind, rank: e.rank, image: e.image.name, type: e.image.type, score: e.score, file: rel(file) });
    progress.tick();
  }
  return files;
}

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
  evaluations.sort((a, b) => configurations.indexOf(a.configuration) - configurations.indexOf(b.configuration));
  const done = new Set(evaluations.map((e) => e.configuration.id));
  const pending = configurations.filter((c) => !done.has(c.id)).map((c) => c.id);
  const report = buildReport(
    {
      command: ['npm run eval --', ...argv.map(shellQuote)].join(' '),
      dataRoot,
      startedAt,
      pixelSize,
      workers,
      concurrency,
      totalMs: performance.now() - started,
      detectorLoads,
      prompts: values.prompts,
      ...(pending.length || error ? { incomplete: { pending, ...(error ? { error } : {}) } } : {}),
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

try {
  await forEachDetector(
    groups,
    async (group) => {
      const t = performance.now();
      progress.status(`loading model ${group.detector.model ?? baseSettings.model}`);
      const settings = loadSettings(process.env, {
        ...(values.model !== undefined ? { model: values.model } : {}),
        ...(values.workers !== undefined ? { workers: values.workers } : {}),
        maxQueue: String(Math.max(baseSettings.maxQueue, concurrency)),
        ...group.detector,
      });
      // Imported here: the model runtime takes a second to load, --help and argument errors should not wait for it.
      const { createClipDetector } = await import('../src/detection/clip-detector.ts');
      const detector = await createClipDetector(settings, log);
      if (promptChoice.mode === 'learned') {
        try {
          // A file given by path joins PROMPTS_DIR's under its own name; either way it must fit this model.
          if (promptFile !== undefined) detector.learned.add(loadLearnedPrompts(promptFile, checkpointIdentity(detector.runtime)));
          detector.learned.resolve(promptChoice.name);
        } catch (err) {
          await detector.close();
          throw err;
        }
      }
      detectorLoads.push({ configurations: group.configurations.map((c) => c.id), detector: group.detector, ms: performance.now() - t });
      return detector;
    },
    async (detector, group) => {
      for (const configuration of group.configurations) {
        const overlays: Record<string, OverlayFile[]> = {};
        const evaluation = await evaluateConfiguration(detector, categories, configuration, {
          pixelSize,
          concurrency,
          maxPixels: baseSettings.maxPixels,
          extremes: overlaysPerKind,
          prompts: promptChoice,
          progress,
          onCategory: async (c) => {
            overlays[c.category.id] = await writeOverlays(detector, c, configuration);
          },
        });
        const scores = join(outDir, `scores-${configuration.id}.csv`);
        writeFileSync(scores, scoresCsv(evaluation));
        const plots = await writeConfigurationPlots(join(outDir, 'plots', configuration.id), evaluation, configurations.length > 1 ? ` (${configuration.id})` : '');
        files[configuration.id] = { plots: plots.map(rel), overlays, scores: rel(scores) };
        evaluations.push(evaluation);
        if (evaluations.length < configurations.length) writeReport();
      }
    },
  );
} catch (err) {
  progress.done();
  if (err instanceof SettingsError && evaluations.length === 0) fail(err.message);
  const message = (err as Error).message;
  console.error(`eval: ${message}`);
  if (evaluations.length) {
    writeReport(message);
    console.error(`eval: the ${evaluations.length} finished configuration(s) of ${configurations.length} are in ${join(outDir, 'report.json')} and report.md`);
  }
  process.exit(1);
}
progress.done();

const { markdown, totalMs } = writeReport();
console.log(markdown);
log(`eval: wrote ${join(outDir, 'report.json')} and report.md in ${(totalMs / 1000).toFixed(1)} s`);
