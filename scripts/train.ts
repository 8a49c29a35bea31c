// Training tool: fits learned prompts (every branch's normal/abnormal embeddings, the image
// pair, temperature, FSAM β and τ, GSCM τ, fusion weights) on MVTec-layout data with masks,
// CLIP frozen. Usage: npm run train -- --data <root>[,<root>…] --out models/prompts/<name>.json
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createCli } from './cli.ts';
import { DatasetError } from '../src/dataset/mvtec.ts';
import { createProgress } from '../src/util/progress.ts';
import { loadSettings, SettingsError } from '../src/settings.ts';
import { collectTrainingData } from '../src/training/dataset.ts';
import { defaultLossSettings } from '../src/training/loss.ts';
import { defaultTrainerSettings } from '../src/training/trainer.ts';

const d = defaultTrainerSettings;
const USAGE = `usage: npm run train -- --data <root>[,<root>…] --out models/prompts/<name>.json [options]

Learns object-agnostic prompts for the service (prompts=learned:<name>) on auxiliary data with
masks: the normal/abnormal embeddings of every branch (full, high, low) and of the image, plus
temperature, FSAM beta/tau, GSCM tau and fusion weights. CLIP stays frozen: dense features are
computed once, cached on disk, and training runs on the cache. Train on one dataset, evaluate on
another it never saw (npm run eval -- --prompts learned:<name>).

  --data DIR[,DIR…]     MVTec-layout roots: <category>/test/<good|type>/*, <category>/ground_truth/<type>/<stem>_mask.png
  --out FILE            the prompt file to write (a .json in PROMPTS_DIR, e.g. models/prompts/mtd.json);
                        the loss curve goes beside it as <name>.loss.png
  --categories A,B      only these categories (id like mtd/magnetic_tile, or the folder name)
  --names A=NAME,…      category names recorded in the data summary (the prompts are object-agnostic)
  --model M             Hugging Face repo id or local checkpoint folder (default: the MODEL setting).
                        Offline on this machine: --model models/demo-tiny
  --epochs N            epochs at most (default ${d.epochs}; 0 writes the templated starting point)
  --lr X                Adam step size (default ${d.lr}); text vectors move about X per step
  --batch N             images per step (default ${d.batch})
  --val-fraction X      share of each category's good and defective images held out for
                        validation and early stopping (default 0.2; 0 = none)
  --patience N          stop after N epochs without validation improvement (default ${d.patience}; 0 = never)
  --seed N              seed of the split and the batch order (default ${d.seed})
  --limit N             at most N images per category (quick runs)
  --cache DIR           feature cache (default: <MODEL_CACHE_DIR>/features)
  --threads N           worker threads for the forward and backward passes (default: the ${availableParallelism()}
                        cores here); any N gives the same prompts, bit for bit
  -h, --help            this text

Loss: focal (gamma ${defaultLossSettings.focalGamma}) + dice on the fused map upsampled to the input size, plus binary
cross-entropy of the image probability. Other settings (MODEL_CACHE_DIR, HF_HUB_OFFLINE, …)
come from the environment as for the service.`;

const cli = createCli('train', USAGE, '\n\nRun npm run train -- --help for the options.');
// Annotated, so TypeScript knows a call never returns.
const fail: (message: string) => never = cli.fail;

const argv = process.argv.slice(2);
const values = cli.parse(argv, {
  data: { type: 'string' },
  out: { type: 'string' },
  categories: { type: 'string' },
  names: { type: 'string', multiple: true, default: [] },
  model: { type: 'string' },
  epochs: { type: 'string' },
  lr: { type: 'string' },
  batch: { type: 'string' },
  'val-fraction': { type: 'string' },
  patience: { type: 'string' },
  seed: { type: 'string' },
  limit: { type: 'string' },
  cache: { type: 'string' },
  threads: { type: 'string' },
});
const roots = (values.data ?? fail('--data is required (the folder(s) holding the training categories)')).split(',').map((r) => r.trim()).filter(Boolean);
const out = resolve(values.out ?? fail('--out is required, e.g. --out models/prompts/mtd.json'));
if (!out.endsWith('.json')) fail(`--out must name a .json file, got "${values.out}"`);
cli.writableFolder('out', dirname(out));
const trainer = {
  ...d,
  epochs: cli.wholeNumber('epochs', values.epochs, d.epochs, 0),
  lr: cli.realNumber('lr', values.lr, d.lr, (v) => v > 0, 'a number > 0'),
  batch: cli.wholeNumber('batch', values.batch, d.batch, 1),
  patience: cli.wholeNumber('patience', values.patience, d.patience, 0),
  seed: cli.wholeNumber('seed', values.seed, d.seed, 0),
};
const validationFraction = cli.realNumber('val-fraction', values['val-fraction'], 0.2, (v) => v >= 0 && v < 1, 'in [0, 1)');
const threads = cli.wholeNumber('threads', values.threads, availableParallelism(), 1);
const limit = values.limit === undefined ? undefined : cli.wholeNumber('limit', values.limit, 0, 2);

let data: ReturnType<typeof collectTrainingData>;
let settings: ReturnType<typeof loadSettings>;
try {
  data = collectTrainingData(roots, { only: values.categories?.split(',').map((c) => c.trim()), names: cli.names(values.names), limit });
  settings = loadSettings(process.env, values.model !== undefined ? { model: values.model } : {});
} catch (err) {
  if (err instanceof DatasetError || err instanceof SettingsError) fail(err.message);
  throw err;
}

const log = (msg: string) => process.stderr.write(`${process.stderr.isTTY ? '\r\x1b[K' : ''}${msg}\n`);
const good = data.images.filter((i) => i.label === 0).length;
log(
  `train: ${data.categories.length} categor${data.categories.length === 1 ? 'y' : 'ies'} (${data.categories.map((c) => c.id).join(', ')}), ` +
    `${data.images.length} images (${good} good, ${data.images.length - good} defective) → ${out}`,
);
for (const note of data.notes) log(`  note: ${note}`);

const started = performance.now();
// Imported here: loading the runtime takes a moment; --help and argument errors should not wait for it.
const { ClipRuntime } = await import('../src/clip/runtime/runtime.ts');
const { runtimeOptionsFromSettings } = await import('../src/detection/runtime-options.ts');
const { runTraining } = await import('../src/training/run.ts');
let runtime: Awaited<ReturnType<typeof ClipRuntime.load>>;
try {
  runtime = await ClipRuntime.load({
    ...runtimeOptionsFromSettings(settings, log),
    // The feature pass runs one batch at a time: one worker with every core (no method graphs).
    workers: 1,
    maxQueue: Math.max(settings.maxQueue, 4),
  });
} catch (err) {
  fail(`the model could not be loaded: ${(err as Error).message}`);
}
if (runtime.generated) log('train: this is a generated model with random weights: the prompts it learns mean nothing about real defects.');

// Ctrl-C: the prompt file is written only at the end (whole, write then rename), so nothing is left.
process.once('SIGINT', () => {
  console.error('\ntrain: interrupted: no prompt file was written');
  process.exit(130);
});
try {
  const result = await runTraining({
    runtime,
    data,
    featureDir: values.cache ? resolve(values.cache) : join(settings.cacheDir, 'features'),
    out,
    trainer,
    validationFraction,
    threads,
    maxPixels: settings.maxPixels,
    progress: (total, what) => {
      log(`train: ${what}${what === 'training' ? ` (${threads} thread${threads === 1 ? '' : 's'})` : ''}…`);
      return createProgress({ total });
    },
    log,
    command: ['npm run train --', ...argv].join(' '),
  });
  const fmt = (t: { total: number; focal: number; dice: number; image: number }) =>
    `${t.total.toFixed(4)} (focal ${t.focal.toFixed(4)}, dice ${t.dice.toFixed(4)}, image ${t.image.toFixed(4)})`;
  const h = result.outcome.history;
  const start = h[0];
  console.log(`images: ${result.counts.train} train, ${result.counts.validation} validation`);
  console.log(`epochs: ${h[h.length - 1].epoch} run${result.outcome.stoppedEarly ? ' (stopped early)' : ''}, best epoch ${result.outcome.bestEpoch}, ${result.outcome.steps} Adam steps`);
  console.log(`start (templated)  train ${fmt(start.train)}${start.validation ? `\n                   val   ${fmt(start.validation)}` : ''}`);
  console.log(`final (epoch ${result.losses.epoch})${' '.repeat(Math.max(1, 5 - String(result.losses.epoch).length))}train ${fmt(result.losses.train)}${result.losses.validation ? `\n                   val   ${fmt(result.losses.validation)}` : ''}`);
  console.log(`wrote ${result.file} and ${result.plot} in ${((performance.now() - started) / 1000).toFixed(1)} s (features ${result.seconds.features.toFixed(1)} s, training ${result.seconds.training.toFixed(1)} s)`);
} catch (err) {
  console.error(`train: ${(err as Error).message}`);
  process.exitCode = 1;
} finally {
  await runtime.close();
}
