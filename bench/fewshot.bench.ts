// `npm run bench:fewshot [-- --arch vit-b-16 --runs 10]`: what few-shot references cost the
// default method (dense-frequency) on a full-size model with random weights (real shapes;
// latency and bytes only, nothing about accuracy). Through the service's detector
// (createClipDetector with settings, WINCLIP=0), map=none:
// - added latency per detection with a memory built from 1, 4, 16 and 64 reference images
//   (the runner's references: encode(images) → memory(records, key), as a stored category's),
//   median and p95 over --runs detections each, against 0 references in the same run;
// - memory per reference: the stored fp16 features and the float32 memory built from them
//   (each inference worker keeps one more float32 copy of a memory it has used).
// One table on stdout, then one JSON line per figure.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { generateModel, isArchName } from '../src/dev/random-model.ts';
import { createClipDetector } from '../src/detection/clip-detector.ts';
import type { DetectOptions } from '../src/detection/types.ts';
import { decodeImage } from '../src/imaging/decode.ts';
import type { PatchMemory } from '../src/methods/dense-frequency/patch-memory.ts';
import { loadSettings } from '../src/settings.ts';
import { seededRandom } from '../src/util/rng.ts';

const { values } = parseArgs({
  options: {
    arch: { type: 'string', default: 'vit-b-16' },
    runs: { type: 'string', default: '10' },
    threads: { type: 'string' },
  },
});
const arch = values.arch!;
if (!isArchName(arch)) throw new Error(`unknown arch ${arch}`);
const runs = Math.max(3, Number(values.runs));
const threads = values.threads ?? String(availableParallelism());
const COUNTS = [1, 4, 16, 64];

const modelDir = resolve(`models/bench-${arch}`);
if (!existsSync(join(modelDir, 'config.json')) && !existsSync(join(modelDir, 'open_clip_config.json'))) {
  console.log(`generating ${arch} with random weights into ${modelDir} (npm run make-model -- --arch ${arch} --seed 1 --out ${modelDir}) …`);
  generateModel({ arch, seed: 1, out: modelDir });
}

const loadBefore = loadavg()[0];
const cacheDir = mkdtempSync(join(tmpdir(), 'bench-fewshot-'));
const settings = loadSettings({}, { model: modelDir, cacheDir, offline: '1', workers: '1', intraOpThreads: threads, winclip: '0', logLevel: 'silent' });
const detector = await createClipDetector(settings);
const size = detector.runtime.graphOptions.imageSize;

/** A grey noise image with `seed`'s noise: references differ from each other and from the query. */
async function noiseImage(seed: number): Promise<Buffer> {
  const rand = seededRandom(seed);
  const rgb = Buffer.alloc(size * size * 3);
  for (let i = 0; i < rgb.length; i++) rgb[i] = 100 + Math.floor(rand() * 40);
  return sharp(rgb, { raw: { width: size, height: size, channels: 3 } }).png().toBuffer();
}

const query = await sharp(await noiseImage(9999))
  .composite([{ input: { create: { width: 30, height: 20, channels: 3, background: '#c02020' } }, left: 100, top: 80 }])
  .png()
  .toBuffer();
const refs = detector.method('dense-frequency').runner.references;
if (refs?.from !== 'features') throw new Error('dense-frequency stores no features');
const t0 = performance.now();
const references = await Promise.all(Array.from({ length: Math.max(...COUNTS) }, async (_, i) => decodeImage(await noiseImage(i + 1))));
const packed = await refs.encode(references);
const encodeMs = (performance.now() - t0) / references.length;

function stats(samples: number[]) {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)];
  return { median: at(0.5), p95: at(0.95) };
}

const base: DetectOptions = { category: 'metal plate', prompts: { mode: 'templated' }, map: 'none', threshold: 0.5, branches: false };
async function latency(memory: unknown) {
  await detector.detect(query, { ...base, memory }); // warm-up: prompt cache, the worker's private copy of the memory
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await detector.detect(query, { ...base, memory });
    samples.push(performance.now() - t);
  }
  return stats(samples);
}

// Interleaved rounds would spread load spikes; one pass per count keeps the worker's copy warm, as a category in use has it.
const zero = await latency(undefined);
const rows: Array<{ references: number; median: number; p95: number; addedMedian: number; addedP95: number; fp16Bytes: number; float32Bytes: number }> = [];
for (const n of COUNTS) {
  const memory = refs.memory(packed.slice(0, n), `bench:${n}`) as PatchMemory;
  const l = await latency(memory);
  rows.push({
    references: n,
    median: l.median,
    p95: l.p95,
    addedMedian: l.median - zero.median,
    addedP95: l.p95 - zero.p95,
    fp16Bytes: packed.slice(0, n).reduce((b, p) => b + p.data.length, 0) / n,
    float32Bytes: memory.memory.byteLength / n,
  });
}
await detector.close();
rmSync(cacheDir, { recursive: true, force: true });

const ms = (v: number) => `${v >= 0 ? '' : '−'}${Math.abs(v).toFixed(0)} ms`;
const mb = (b: number) => `${(b / 1e6).toFixed(2)} MB`;
const g = detector.runtime.grid;
const layers = detector.runtime.graphOptions.denseLayers;
console.log(`\nFew-shot benchmark: ${arch} (random weights), ${size} px, grid ${g}×${g}, dense layers ${layers.join(',')}, dim ${detector.runtime.dim}`);
console.log(`machine: ${availableParallelism()} cores, 1 worker, ONNX Runtime threads: ${threads}, ${runs} detections per row (map=none, method=dense-frequency)`);
console.log(`load average (1 min) at start ${loadBefore.toFixed(2)}, at end ${loadavg()[0].toFixed(2)}`);
console.log(`reference encoding: ${ms(encodeMs)} per reference (image tower, once when a reference is added)\n`);
console.log('| references | median | p95 | added (median) | added (p95) | fp16 stored / ref | float32 memory / ref |');
console.log('|---:|---:|---:|---:|---:|---:|---:|');
console.log(`| 0 | ${ms(zero.median)} | ${ms(zero.p95)} | — | — | — | — |`);
for (const r of rows) {
  console.log(`| ${r.references} | ${ms(r.median)} | ${ms(r.p95)} | ${ms(r.addedMedian)} | ${ms(r.addedP95)} | ${mb(r.fp16Bytes)} | ${mb(r.float32Bytes)} |`);
}
console.log('');
const json = (o: object) => console.log(JSON.stringify({ bench: 'fewshot', arch, ...o }));
json({ figure: 'encode_ms_per_reference', value: Math.round(encodeMs) });
json({ figure: 'latency_ms', references: 0, median: Math.round(zero.median), p95: Math.round(zero.p95) });
for (const r of rows) {
  json({ figure: 'latency_ms', references: r.references, median: Math.round(r.median), p95: Math.round(r.p95) });
  json({ figure: 'added_latency_ms', references: r.references, median: Math.round(r.addedMedian), p95: Math.round(r.addedP95) });
}
json({ figure: 'fp16_bytes_per_reference', value: rows[0].fp16Bytes });
json({ figure: 'float32_memory_bytes_per_reference', value: rows[0].float32Bytes });
