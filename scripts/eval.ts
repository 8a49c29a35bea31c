// Evaluation tool: scores MVTec-layout data with the service's own detector and writes a report.
// Usage: npm run eval -- --data <root> [options]   (npm run eval -- --help for all of them)
// The run itself (discovery, detectors, evaluation, files) is src/eval/run.ts; this file parses
// the arguments and prints.
import { basename, extname, resolve } from 'node:path';
import { createCli } from './cli.ts';
import type { PromptChoice } from '../src/prompts/prompt-choice.ts';
import { DatasetError } from '../src/dataset/mvtec.ts';
import { DEFAULT_PIXEL_SIZE } from '../src/eval/evaluate.ts';
import { EvalRunFailure, planEval, runEval, type EvalPlan, type EvalRunOptions } from '../src/eval/run.ts';
import { readLearnedPromptsFile } from '../src/methods/dense-frequency/learned-prompts.ts';
import { knownSetKeys, SweepError } from '../src/eval/sweep.ts';
import { DEFAULT_SEEDS } from '../src/eval/protocol.ts';
import { DEFAULT_CONFIDENCE, DEFAULT_TARGET_FAR } from '../src/eval/calibrate.ts';
import { SettingsError } from '../src/settings.ts';

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

Few-shot and calibration protocol (each configuration runs once per seed; the report gives the
mean, std, min and max over the seeds per category and macro):
  --shots K             K normal references per category, drawn from train/good when the category
                        has it, else from the test set's good images (then excluded from the test
                        set); the method's memory is built as for a stored category (default 0)
  --seed S[,S…]         seeds of the draws (default ${DEFAULT_SEEDS.join(',')} with --shots, 1 with --calibrate alone)
  --calibrate M         hold out M normal images per category (same pool, after the references,
                        excluded from the test set), calibrate a threshold on their scores as the
                        service does, and report the realised false-alarm and miss rates on the rest
  --target-far A        α of the calibration: the false-alarm rate the threshold bounds (default ${DEFAULT_TARGET_FAR})
  --confidence C        confidence of that bound (default ${DEFAULT_CONFIDENCE}; needs M ≥ 22 at the defaults)
  -h, --help            this text

Other settings (MODEL_CACHE_DIR, HF_HUB_OFFLINE, HF_TOKEN, …) come from the environment as for
the service. Progress goes to stderr; the summary table to stdout.`;

const cli = createCli('eval', USAGE, '\n\nRun npm run eval -- --help for the options.');
// Annotated, so TypeScript knows a call never returns.
const fail: (message: string) => never = cli.fail;

function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** A line on stderr, clearing the progress bar when stderr is a terminal. */
const log = (msg: string) => process.stderr.write(`${process.stderr.isTTY ? '\r\x1b[K' : ''}${msg}\n`);

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
  shots: { type: 'string' },
  seed: { type: 'string' },
  calibrate: { type: 'string' },
  'target-far': { type: 'string' },
  confidence: { type: 'string' },
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

const shots = cli.wholeNumber('shots', values.shots, 0, 0);
const calibrate = cli.wholeNumber('calibrate', values.calibrate, 0, 1);
const inOpen01 = (v: number) => v > 0 && v < 1;
const targetFar = cli.realNumber('target-far', values['target-far'], DEFAULT_TARGET_FAR, inOpen01, 'a number in (0, 1)');
const confidence = cli.realNumber('confidence', values.confidence, DEFAULT_CONFIDENCE, inOpen01, 'a number in (0, 1)');
if (!calibrate && (values['target-far'] !== undefined || values.confidence !== undefined)) fail('--target-far and --confidence need --calibrate M');
if (!shots && !calibrate && values.seed !== undefined) fail('--seed needs --shots K or --calibrate M');
let seeds: number[] = shots ? [...DEFAULT_SEEDS] : [1];
if (values.seed !== undefined) {
  const parts = values.seed.split(',').map((p) => p.trim());
  if (parts.some((p) => !/^\d+$/.test(p) || Number(p) > 0xffffffff)) fail(`--seed must be whole numbers (0 … 4294967295) separated by commas, got "${values.seed}"`);
  seeds = parts.map(Number);
  if (new Set(seeds).size !== seeds.length) fail(`--seed ${values.seed}: a seed is repeated`);
}

const options: EvalRunOptions = {
  data: dataRoot,
  only: values.categories?.split(',').map((c) => c.trim()),
  names: cli.names(values.names),
  limit,
  set: values.set,
  ...(values.model !== undefined ? { model: values.model } : {}),
  ...(values.workers !== undefined ? { workers: values.workers } : {}),
  ...(values.out !== undefined ? { out: values.out } : {}),
  prompts: values.prompts,
  promptChoice,
  ...(promptFile !== undefined ? { promptFile } : {}),
  pixelSize,
  overlaysPerKind,
  ...(shots || calibrate ? { protocol: { shots, calibrate, seeds, targetFalseAlarmRate: targetFar, confidence } } : {}),
  command: ['npm run eval --', ...argv.map(shellQuote)].join(' '),
};

if (values.out !== undefined) cli.writableFolder('out', values.out);

let plan: EvalPlan;
try {
  plan = planEval(options);
} catch (err) {
  if (err instanceof DatasetError || err instanceof SweepError || err instanceof SettingsError) fail(err.message);
  throw err;
}

// Ctrl-C: the report says what was done and that the rest is missing because of it.
const interrupted = new AbortController();
process.once('SIGINT', () => {
  interrupted.abort();
  console.error('\neval: interrupted: report.json and report.md say which configurations are missing');
  process.exit(130);
});
try {
  const { reportFile, markdown, totalMs } = await runEval(plan, { interrupted: interrupted.signal });
  console.log(markdown);
  log(`eval: wrote ${reportFile} and report.md in ${(totalMs / 1000).toFixed(1)} s`);
} catch (err) {
  if (!(err instanceof EvalRunFailure)) throw err;
  if (err.isSettingsError) fail(err.message);
  console.error(`eval: ${err.message}`);
  if (err.finished) console.error(`eval: the ${err.finished} finished configuration(s) of ${err.total} are in ${err.reportFile} and report.md`);
  process.exit(1);
}
