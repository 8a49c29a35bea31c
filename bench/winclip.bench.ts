// `npm run bench:winclip [-- --arch vit-b-16-plus-240 --runs 10]`: cost of method=winclip
// against method=ours on a full-size model with random weights (real shapes; the numbers are
// latency only and say nothing of accuracy). Measures through the detector as the service runs
// it (decode → text embeddings (cached) → worker: graph + scoring → no map rendering):
// - start-up with and without WINCLIP (fresh graph cache, then cached), and the window
//   graph's weight file (what each worker loads on top of the image graph);
// - per-image latency, median and p95 over --runs runs: ours, WinCLIP zero-shot, WinCLIP 1-shot;
//   then 0/1/4-shot with the references' window embeddings cached and 4-shot without (winclip-figures.ts).
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { generateModel, isArchName } from '../src/dev/random-model.ts';
import { createClipDetector, type ClipDetector } from '../src/detection/clip-detector.ts';
import type { DetectOptions } from '../src/detection/types.ts';
import { loadSettings } from '../src/settings.ts';
import { winclipFigures } from './winclip-figures.ts';

const { values } = parseArgs({
  options: {
    arch: { type: 'string', default: 'vit-b-16-plus-240' },
    runs: { type: 'string', default: '10' },
    threads: { type: 'string' },
  },
});
const arch = values.arch!;
if (!isArchName(arch)) throw new Error(`unknown arch ${arch}`);
const runs = Math.max(10, Number(values.runs));
const threads = values.threads ?? String(availableParallelism());

const modelDir = resolve(`models/bench-${arch}`);
if (!existsSync(join(modelDir, 'config.json')) && !existsSync(join(modelDir, 'open_clip_config.json'))) {
  console.log(`generating ${arch} with random weights into ${modelDir} …`);
  generateModel({ arch, seed: 1, out: modelDir });
}

const loadBefore = loadavg()[0];
const cacheDirs: string[] = [];
async function load(winclip: boolean, cacheDir?: string): Promise<{ detector: ClipDetector; ms: number; cacheDir: string }> {
  const dir = cacheDir ?? mkdtempSync(join(tmpdir(), 'bench-winclip-'));
  if (!cacheDir) cacheDirs.push(dir);
  const settings = loadSettings({}, { model: modelDir, cacheDir: dir, offline: '1', workers: '1', intraOpThreads: threads, winclip: winclip ? '1' : '0', logLevel: 'silent' });
  const t = performance.now();
  const detector = await createClipDetector(settings);
  return { detector, ms: performance.now() - t, cacheDir: dir };
}

function stats(samples: number[]) {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)];
  return { median: at(0.5), p95: at(0.95) };
}

// Start-up: a fresh cache builds the graphs; the second start reuses them. Warm-up included.
const fresh = { ours: await load(false) };
await fresh.ours.detector.close();
const freshWin = await load(true);
const startup = {
  freshOurs: fresh.ours.ms,
  freshWinclip: freshWin.ms,
  windowGraphMs: freshWin.detector.runtime.extraGraphs.winclip?.graph.buildMs ?? 0,
};
const windowWeightsMb = statSync(`${freshWin.detector.runtime.extraGraphs.winclip!.graph.path}.data`).size / 2 ** 20;
const imageWeightsMb = statSync(`${freshWin.detector.runtime.graphs.imagePath}.data`).size / 2 ** 20;
await freshWin.detector.close();
const cachedOurs = await load(false, freshWin.cacheDir);
const cachedOursMs = cachedOurs.ms;
await cachedOurs.detector.close();
const { detector, ms: cachedWinclipMs } = await load(true, freshWin.cacheDir);

const size = detector.runtime.graphOptions.imageSize;
const image = await sharp({ create: { width: size, height: size, channels: 3, background: '#707070' } })
  .composite([{ input: { create: { width: 30, height: 20, channels: 3, background: '#c02020' } }, left: 100, top: 80 }])
  .png()
  .toBuffer();
const normal = await sharp({ create: { width: size, height: size, channels: 3, background: '#727272' } }).png().toBuffer();
const base: DetectOptions = { category: 'metal plate', prompts: { mode: 'templated' }, map: 'none', threshold: 0.5, branches: false };

async function latency(options: DetectOptions) {
  await detector.detect(image, options); // warm-up; also fills the prompt cache for the category
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await detector.detect(image, options);
    samples.push(performance.now() - t);
  }
  return stats(samples);
}

const ours = await latency({ ...base, method: 'dense-frequency' });
const zeroShot = await latency({ ...base, method: 'winclip' });
const oneShot = await latency({ ...base, method: 'winclip', references: [normal] });
// k-shot with the references' window embeddings cached (as for a stored category) and without.
const normals = await Promise.all(['#727272', '#6e7072', '#747270', '#707070'].map((c) => sharp({ create: { width: size, height: size, channels: 3, background: c } }).png().toBuffer()));
const shots = await winclipFigures(detector, image, normals, Math.max(3, runs >> 1));
await detector.close();
for (const dir of cacheDirs) rmSync(dir, { recursive: true, force: true });

const f = (ms: number) => (ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${ms.toFixed(0)} ms`);
const g = detector.runtime.grid;
console.log(`\nWinCLIP benchmark: ${arch} (random weights), ${size}px, grid ${g}×${g}, windows 2 and 3 (${(g - 1) ** 2} + ${(g - 2) ** 2} sequences)`);
console.log(`machine: ${availableParallelism()} cores, 1 worker, ONNX Runtime threads: ${threads}, runs: ${runs}`);
// Other processes on the machine inflate every figure; the load average says how much.
console.log(`load average (1 min) at start ${loadBefore.toFixed(2)}, at end ${loadavg()[0].toFixed(2)}`);
console.log(`start-up, fresh cache (build + sessions + warm-up): WINCLIP=0 ${f(startup.freshOurs)}, WINCLIP=1 ${f(startup.freshWinclip)} (window graph build ${f(startup.windowGraphMs)})`);
console.log(`start-up, cached graphs:                            WINCLIP=0 ${f(cachedOursMs)}, WINCLIP=1 ${f(cachedWinclipMs)}`);
console.log(`graph weight files per worker:                      image ${imageWeightsMb.toFixed(0)} MB, window graph ${windowWeightsMb.toFixed(0)} MB more with WINCLIP=1`);
console.log(`per image (detect, map=none):`);
console.log(`  method=dense-frequency           median ${f(ours.median)}, p95 ${f(ours.p95)}`);
console.log(`  method=winclip, 0-shot   median ${f(zeroShot.median)}, p95 ${f(zeroShot.p95)}`);
console.log(`  method=winclip, 1-shot   median ${f(oneShot.median)}, p95 ${f(oneShot.p95)} (references sent with each request)`);
for (const s of shots) console.log(`  ${s.name.padEnd(50)} median ${f(s.median_ms)}, p95 ${f(s.p95_ms)} (${(s.median_ms / shots[0].median_ms).toFixed(2)}× 0-shot)`);
