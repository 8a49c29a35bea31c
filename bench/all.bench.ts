// `npm run bench [-- --model DIR --cache DIR --runs 10 --quick --threads N]`: every benchmark in
// one run, each figure next to the machine's MatMul floor measured in the same run (bench/floor.ts):
// a 2048³ fp32 MatMul and an int8 MatMulInteger. Figures: the image tower (fp32; int8 when the
// QUANTIZE setting exists) at batch 1 and 8, the text tower on one category, end-to-end
// /v1/detect on a 1 MP JPEG (map none/png/overlay, branches off/on), WinCLIP 0/1/4-shot, the
// dense-frequency scoring (bench/scoring.bench.ts) and the model-input resize. A figure's floor is
// its multiply-adds at the floor's rate (end to end: the image tower's); ratio = median / floor.
// Prints a table, then one JSON line per figure. The model is a full-size random vit-b-16
// (generated once into --model if missing; random weights measure speed only).
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import lockfile from 'proper-lockfile';
import sharp from 'sharp';
import { generateModel } from '../src/dev/random-model.ts';
import { createClipDetector, type ClipDetector } from '../src/detection/clip-detector.ts';
import { buildApp } from '../src/app.ts';
import { loadSettings, SETTINGS, type Settings } from '../src/settings.ts';
import { decodeImage } from '../src/imaging/decode.ts';
import { toPixelValues } from '../src/clip/input/preprocess.ts';
import type { WindowGraphOptions } from '../src/methods/winclip/window-graph.ts';
import { machineLine, report, time, timeAlternating, type Figure } from './figures.ts';
import { FloorSessions, withFloor, type Floors } from './floor.ts';
import { categoryPrompts, imageTowerFigure, imageTowerMacs, textTowerRun, transformerMacs } from './tower.ts';
import { windowGraphMacs, winclipFigures } from './winclip-figures.ts';
import { scoringFigures, scoringMacs } from './scoring.bench.ts';
import { loadClipTokenizer } from '../src/clip/input/tokenizer.ts';

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    cache: { type: 'string' },
    runs: { type: 'string', default: '10' },
    quick: { type: 'boolean', default: false },
    threads: { type: 'string' },
  },
});
const quick = values.quick!;
const runs = quick ? 3 : Math.max(3, Number(values.runs));
const threads = values.threads ? Number(values.threads) : availableParallelism();
const modelDir = resolve(values.model ?? process.env.BENCH_MODEL ?? 'models/bench-vit-b-16');
const cacheDir = resolve(values.cache ?? '.cache/bench');

/** The random vit-b-16, generated once; a lock keeps two benches from writing it at the same time. */
async function ensureModel(): Promise<void> {
  const ready = () => existsSync(join(modelDir, 'config.json')) && existsSync(join(modelDir, 'model.safetensors'));
  if (ready()) return;
  mkdirSync(dirname(modelDir), { recursive: true });
  const release = await lockfile.lock(dirname(modelDir), { lockfilePath: `${modelDir}.lock`, retries: { retries: 120, minTimeout: 5000, maxTimeout: 5000 } });
  try {
    if (!ready()) {
      console.log(`generating vit-b-16 with random weights into ${modelDir} …`);
      generateModel({ arch: 'vit-b-16', seed: 1, out: modelDir });
    }
  } finally {
    await release();
  }
}

/** The settings key of QUANTIZE when this checkout has it and accepts int8. */
function int8SettingKey(): string | undefined {
  const entry = Object.entries(SETTINGS).find(([, spec]) => (spec as { env?: string }).env === 'QUANTIZE');
  if (!entry) return undefined;
  try {
    loadSettings({}, { [entry[0]]: 'int8' } as never);
    return entry[0];
  } catch {
    return undefined;
  }
}

const scratch = mkdtempSync(join(tmpdir(), 'bench-all-'));
function settingsFor(extra: Record<string, string> = {}): Settings {
  return loadSettings({}, {
    model: modelDir,
    cacheDir,
    dataDir: join(scratch, 'data'),
    promptsDir: join(scratch, 'prompts'),
    offline: '1',
    workers: '1',
    intraOpThreads: String(threads),
    winclip: '1',
    logLevel: 'silent',
    ...extra,
  } as never);
}

/** A 1000×1000 JPEG with texture and a defect, as an upload. */
async function megapixelJpeg(seed: number, defect: boolean): Promise<Buffer> {
  const w = 1000;
  const h = 1000;
  const rgb = Buffer.alloc(w * h * 3);
  let s = seed;
  for (let i = 0; i < w * h; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    const v = 100 + ((((i % w) >> 3) + ((i / w) >> 3)) % 6) * 8 + (s >>> 28);
    rgb[3 * i] = v;
    rgb[3 * i + 1] = v + 4;
    rgb[3 * i + 2] = v - 4;
  }
  if (defect) for (let y = 400; y < 470; y++) rgb.fill(230, 3 * (y * w + 500), 3 * (y * w + 560));
  return sharp(rgb, { raw: { width: w, height: h, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
}

/** The floor again before a group of figures: its rate (fp32 or int8 multiply-adds per ms), the floors in the table. */
async function floorNow(label: string, int8: boolean): Promise<number> {
  const f: Floors = await floorSessions.measure(quick ? 2 : 3, ` (before ${label})`);
  figures.push(f.fp32, f.int8);
  return int8 ? f.int8MacsPerMs : f.fp32MacsPerMs;
}

async function detectorFigures(detector: ClipDetector, label: string, int8: boolean, full: boolean): Promise<void> {
  let rate = await floorNow(`image tower ${label}`, int8);
  const r = detector.runtime;
  const size = r.graphOptions.imageSize;
  const towerMacs = imageTowerMacs(r.config, size);
  const b1 = withFloor(await imageTowerFigure(r.pool, size, 1, runs, `image tower ${label} batch 1`), towerMacs, rate);
  figures.push(b1);
  const b8 = withFloor(await imageTowerFigure(r.pool, size, 8, Math.max(2, runs >> 1), `image tower ${label} batch 8`), 8 * towerMacs, rate);
  b8.note = `${(b8.median_ms / 8).toFixed(1)} ms per image`;
  figures.push(b8);

  // End to end over HTTP (in-process inject): decode, resize, tower, scoring, maps, PNG, JSON.
  rate = await floorNow(`detect ${label}`, int8);
  const app = await buildApp({ detector, defaultThreshold: 0.5, maxBodyBytes: 64 << 20, logLevel: 'silent', mapUrls: { ttlMs: 60_000, maxBytes: 64 << 20 } });
  const jpeg = await megapixelJpeg(7, true);
  const combos: Array<[string, boolean]> = full
    ? [['none', false], ['png', false], ['overlay', false], ['none', true], ['png', true], ['overlay', true]]
    : [['png', false]];
  // Each detection alternates with a run of the tower alone, so "around the tower" compares two
  // medians taken under the same load.
  const pixels = new Float32Array(3 * size * size).map((_, i) => Math.sin(i) * 0.5);
  const tower = () => r.pool.infer('image', { pixel_values: { type: 'float32', data: pixels.slice(), dims: [1, 3, size, size] } });
  for (const [map, branches] of combos) {
    const url = `/v1/detect?category=metal%20plate&map=${map}&branches=${branches}`;
    // The answers' own timingsMs per stage (decode; encode = model input + tower; score; render).
    const stages: Record<string, number[]> = {};
    const run = async () => {
      const res = await app.inject({ method: 'POST', url, headers: { 'content-type': 'image/jpeg' }, payload: jpeg });
      if (res.statusCode !== 200) throw new Error(`${url}: ${res.statusCode} ${res.body.slice(0, 200)}`);
      for (const [stage, ms] of Object.entries(res.json().timingsMs as Record<string, number>)) (stages[stage] ??= []).push(ms);
    };
    // Twice the runs (at least 12): a detection's median moves more with the load than the tower's.
    const [detect, alone] = await timeAlternating([`detect ${label} 1MP map=${map} branches=${branches}`, 'tower'], Math.max(12, 2 * runs), [run, tower], 2);
    const f = withFloor(detect, towerMacs, rate);
    const median = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1];
    const byStage = ['decode', 'encode', 'score', 'render'].map((k) => `${k} ${median(stages[k] ?? [NaN]).toFixed(1)}`).join(', ');
    f.note = `${(f.median_ms / alone.median_ms).toFixed(2)}× the tower (${alone.median_ms.toFixed(1)} ms in alternate runs), +${(f.median_ms - alone.median_ms).toFixed(0)} ms around it; stages ${byStage}`;
    figures.push(f);
  }
  await app.close();

  if (full) {
    rate = await floorNow(`text tower ${label}`, int8);
    const tokenizer = await loadClipTokenizer(modelDir);
    const texts = categoryPrompts('metal plate');
    const { run, longest } = textTowerRun(r.pool, tokenizer, texts, true);
    const text = await time(`text tower ${label} one category`, Math.max(2, runs >> 1), run);
    text.note = `${texts.length} prompts, ids cut at ${longest()}`;
    figures.push(withFloor(text, texts.length * transformerMacs(longest(), r.config.text.width, r.config.text.layers), rate));
  }

  const windows = r.extraGraphs.winclip?.spec.options as WindowGraphOptions | undefined;
  if (windows) {
    rate = await floorNow(`winclip ${label}`, int8);
    const refs = await Promise.all([1, 2, 3, 4].map((s) => megapixelJpeg(100 + s, false)));
    const wMacs = windowGraphMacs(r.config, windows.imageSize, windows.windowSizes);
    const wRuns = quick ? 1 : Math.max(2, runs >> 2);
    const w = await winclipFigures(detector, jpeg, refs, wRuns, `winclip ${label}`);
    const zero = w[0].median_ms;
    for (const f of w) {
      const encoded = f.name.includes('per request') ? 5 : 1;
      const withF = withFloor(f, encoded * wMacs, rate);
      withF.note = `${(f.median_ms / zero).toFixed(2)}× 0-shot`;
      figures.push(withF);
    }
  }
}

await ensureModel();
console.log(`bench: ${modelDir}, ${runs} runs${quick ? ' (quick)' : ''}, ONNX Runtime threads ${threads}`);
console.log(`start: ${machineLine()}`);
const floorSessions = await FloorSessions.open(threads);
const figures: Figure[] = [];

const fp32 = await createClipDetector(settingsFor());
try {
  await detectorFigures(fp32, 'fp32', false, true);
  // The model input as the worker computes it (resize + normalise of a 1 MP upload).
  const decoded = await decodeImage(await megapixelJpeg(7, true));
  figures.push(await time('model input 1MP → 224 (resize + normalise)', runs * 2, () => toPixelValues([decoded], fp32.runtime.preprocess)));
} finally {
  await fp32.close();
}

const int8Key = int8SettingKey();
if (int8Key) {
  const int8 = await createClipDetector(settingsFor({ [int8Key]: 'int8' }));
  try {
    await detectorFigures(int8, 'int8', true, false);
  } finally {
    await int8.close();
  }
} else {
  console.log('int8: not available (this checkout has no QUANTIZE=int8 setting)');
}

const scoringRate = await floorNow('scoring', false);
for (const f of await scoringFigures({ runs, quick })) {
  const big = f.name.includes('37x37');
  figures.push(withFloor(f, scoringMacs(big ? 37 : 14, big ? 768 : 512), scoringRate));
}

console.log(`end: ${machineLine()} (the machine may be shared: compare ratios, not milliseconds)`);
report(figures);
await floorSessions.close();
rmSync(scratch, { recursive: true, force: true });
