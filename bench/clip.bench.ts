// `npm run bench:clip [-- --arch vit-b-16 --runs 20 --size 224]`: speed of the CLIP runtime on
// a full-size model with random weights (real shapes; the numbers say nothing of accuracy).
// Prints graph build time, session creation time and image-tower latency (median, p95) at
// batch 1 and 8, run in a worker thread as the service runs it; and the text tower on one
// category's prompt ensemble (what the first request for a new category waits for), with ids
// cut after the last end-of-text token as the service sends them and padded to 77 as before.
import { existsSync, rmSync, mkdtempSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { generateModel, isArchName } from '../src/dev/random-model.ts';
import { loadClipWeights } from '../src/clip/weights/clip-weights.ts';
import { readClipConfig } from '../src/clip/config.ts';
import { ensureGraphs } from '../src/clip/onnx/graph-cache.ts';
import { WorkerPool } from '../src/clip/runtime/worker-pool.ts';
import { defaultDenseLayers, defaultDenseStart } from '../src/clip/onnx/dense-defaults.ts';
import { loadClipTokenizer } from '../src/clip/input/tokenizer.ts';
import { categoryPrompts, imageTowerFigure, textTowerRun } from './tower.ts';
import { time } from './figures.ts';

const { values } = parseArgs({
  options: {
    arch: { type: 'string', default: 'vit-b-16' },
    runs: { type: 'string', default: '20' },
    size: { type: 'string' },
    threads: { type: 'string' },
  },
});
const arch = values.arch!;
if (!isArchName(arch)) throw new Error(`unknown arch ${arch}`);
const runs = Math.max(20, Number(values.runs));

const modelDir = resolve(`models/bench-${arch}`);
if (!existsSync(join(modelDir, 'config.json')) && !existsSync(join(modelDir, 'open_clip_config.json'))) {
  console.log(`generating ${arch} with random weights into ${modelDir} …`);
  generateModel({ arch, seed: 1, out: modelDir });
}
const { config } = readClipConfig(modelDir);
const size = values.size ? Number(values.size) : config.vision.imageSize;
const options = {
  imageSize: size,
  denseLayers: defaultDenseLayers(config.vision.layers),
  denseStart: defaultDenseStart(config.vision.layers),
  denseAttention: 'vv' as const,
};

// A fresh cache folder so the build is measured, not skipped.
const cacheDir = mkdtempSync(join(tmpdir(), 'bench-graphs-'));
let t = performance.now();
const weights = (await loadClipWeights(modelDir)).weights;
const loadMs = performance.now() - t;
t = performance.now();
const graphs = await ensureGraphs(modelDir, cacheDir, options, async () => weights);
const buildMs = performance.now() - t;

const threads = values.threads ? Number(values.threads) : availableParallelism();
t = performance.now();
const pool = await WorkerPool.start({
  models: { text: graphs.textPath, image: graphs.imagePath },
  size: 1,
  intraOpThreads: threads,
  maxQueue: 4,
  jobTimeoutMs: 0,
});
const sessionMs = performance.now() - t;

// The towers as bench/tower.ts measures them for `npm run bench` too.
const b1 = await imageTowerFigure(pool, size, 1, runs);
const b8 = await imageTowerFigure(pool, size, 8, runs);

// One category's templated ensemble, in the service's batches of 64 prompts.
const tokenizer = await loadClipTokenizer(modelDir);
const texts = categoryPrompts('metal plate');
async function textLatency(cut: boolean): Promise<{ median: number; p95: number; length: number }> {
  const { run, longest } = textTowerRun(pool, tokenizer, texts, cut);
  const figure = await time('text', 3, run);
  return { median: figure.median_ms, p95: figure.p95_ms, length: longest() };
}
const textCut = await textLatency(true);
const textFull = await textLatency(false);
await pool.close();
rmSync(cacheDir, { recursive: true, force: true });

const f = (ms: number) => `${ms.toFixed(0)} ms`;
console.log(`\nCLIP runtime benchmark: ${arch} (random weights), ${size}px, dense layers ${options.denseLayers.join(',')} from block ${options.denseStart}`);
console.log(`machine: ${availableParallelism()} cores, ONNX Runtime threads: ${threads}, runs: ${runs}`);
console.log(`weights load (safetensors):   ${f(loadMs)}`);
console.log(`graph build (text + image):   ${f(buildMs)}`);
console.log(`session creation (worker):    ${f(sessionMs)}`);
console.log(`image tower, batch 1:         median ${f(b1.median_ms)}, p95 ${f(b1.p95_ms)}`);
console.log(`image tower, batch 8:         median ${f(b8.median_ms)}, p95 ${f(b8.p95_ms)} (${f(b8.median_ms / 8)} per image)`);
console.log(`text tower, ${texts.length} prompts (one category), median of 3:`);
console.log(`  ids cut at ${textCut.length} tokens:      ${f(textCut.median)}`);
console.log(`  ids padded to ${textFull.length}:          ${f(textFull.median)}`);
