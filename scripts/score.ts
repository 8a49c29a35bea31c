// Folder scoring: every image of an unlabelled folder through the service's detector, with
// scores.csv, scores.json and report.html (the most anomalous images with overlays).
// Usage: npm run score -- --data <folder> --category <name> [options]   (--help for all)
// The run itself is src/folder-scoring/run.ts; this file parses the arguments and prints.
import { join } from 'node:path';
import { createCli } from './cli.ts';
import { FolderError, listFolderImages } from '../src/folder-scoring/discover.ts';
import { scoreFolder } from '../src/folder-scoring/run.ts';
import { loadSettings, SettingsError, type Settings } from '../src/settings.ts';
import { ServiceError } from '../src/errors.ts';
import { MethodRegistry } from '../src/methods/registry.ts';

const METHODS = new MethodRegistry();

const USAGE = `usage: npm run score -- --data <folder> --category <name> [options]

Scores every image (jpg, jpeg, png, bmp, tif, tiff, webp) under a folder, at any depth, with the
service's detector, and writes scores.csv and scores.json (one row per image, most anomalous
first; images that do not decode get a row with the error) and report.html (the most anomalous
images with their overlays, one file that opens offline).

  --data DIR         the folder of images (searched recursively; hidden files skipped)
  --category NAME    the part's name, put into the prompts (e.g. "metal plate")
  --method M         ${METHODS.names().join(', ')} (default: ${METHODS.names()[0]}). musc scores the
                     images against each other, in batches of at most --batch images
  --out DIR          output folder (default: out/score-<date>-<time>)
  --model M          Hugging Face repo id or local checkpoint folder (default: the MODEL setting);
                     offline: --model models/demo-tiny (npm run make-model -- --arch tiny --seed 1 --out models/demo-tiny)
  --threshold T      verdict threshold on the score, in [0, 1] (default: the THRESHOLD setting)
  --top N            images shown in report.html (default 24)
  --batch N          method=musc: at most N images per mutual batch (default: the BATCH_MAX setting),
                     the folder split into equal batches
  --workers N        inference worker threads (default: the WORKERS setting)
  -h, --help         this text

Other settings (MODEL_CACHE_DIR, HF_HUB_OFFLINE, MAX_PIXELS, …) come from the environment as
for the service. Progress goes to stderr; the output files' paths to stdout.`;

const cli = createCli('score', USAGE, '\n\nRun npm run score -- --help for the options.');
const fail: (message: string) => never = cli.fail;
const log = (msg: string) => process.stderr.write(`${process.stderr.isTTY ? '\r\x1b[K' : ''}${msg}\n`);

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
  category: { type: 'string' },
  method: { type: 'string' },
  out: { type: 'string' },
  model: { type: 'string' },
  threshold: { type: 'string' },
  top: { type: 'string' },
  batch: { type: 'string' },
  workers: { type: 'string' },
});
const data = values.data ?? fail('--data is required (the folder of images)');
const category = values.category?.trim() || fail('--category is required (the part\'s name, put into the prompts)');
if (values.method !== undefined && !METHODS.find(values.method)) fail(`--method ${values.method}: expected one of ${METHODS.names().join(', ')}`);
const method = values.method === undefined ? undefined : METHODS.find(values.method)!.name;
const top = cli.wholeNumber('top', values.top, 24, 0);

let settings: Settings;
try {
  settings = loadSettings(process.env, {
    ...(values.model !== undefined ? { model: values.model } : {}),
    ...(values.workers !== undefined ? { workers: values.workers } : {}),
  });
} catch (err) {
  if (err instanceof SettingsError) fail(err.message);
  throw err;
}
const threshold = cli.realNumber('threshold', values.threshold, settings.threshold, (v) => v >= 0 && v <= 1, 'a number in [0, 1]');
const batchLimit = cli.wholeNumber('batch', values.batch, settings.batchMax, 1);
const out = values.out ?? join('out', `score-${timestamp(new Date())}`);
cli.writableFolder('out', out);

// A folder without images is found before the model loads.
try {
  listFolderImages(data);
} catch (err) {
  if (err instanceof FolderError) fail(err.message);
  throw err;
}

const { createClipDetector } = await import('../src/detection/clip-detector.ts');
log(`score: loading model ${settings.model}`);
let detector: Awaited<ReturnType<typeof createClipDetector>>;
try {
  detector = await createClipDetector(settings, log);
} catch (err) {
  // A missing model, no network for a download: the checkpoint's own message, without the stack.
  console.error(`score: the model could not be loaded: ${(err as Error).message}`);
  process.exit(1);
}
try {
  const result = await scoreFolder(detector, {
    data,
    category,
    ...(method ? { method } : {}),
    threshold,
    top,
    batchLimit,
    out,
    command: ['npm run score --', ...argv.map(shellQuote)].join(' '),
  });
  const s = result.summary;
  if (s.warning) log(`score: ${s.warning}`);
  log(`score: ${s.scored} of ${s.images} images scored (${s.failed} failed), ${s.anomalous} anomalous at ${s.threshold}, in ${s.seconds.toFixed(1)} s`);
  console.log(`${result.files.csv}\n${result.files.json}\n${result.files.html}`);
} catch (err) {
  if (err instanceof FolderError || err instanceof ServiceError) {
    await detector.close();
    fail(err.message);
  }
  throw err;
} finally {
  await detector.close();
}
