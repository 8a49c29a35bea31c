// `npm run bench:int8 [-- --arch vit-b-16 --runs 10 --data ../shared/data --images 12 --threads N --no-fidelity --winclip --spin --profile]`:
// the int8 towers (QUANTIZE=int8) against fp32, in one run, on full-size random-weight models
// (real shapes: the speed is real, the numbers say nothing of accuracy).
//
// Speed: the image tower at batch 1 and 8 in fp32, int8 (QUANTIZE_WEIGHTS=u8), int8-s7
// (QUANTIZE_WEIGHTS=s7) and int8-s8 (QUANTIZE_WEIGHTS=s8: exact only on a VNNI CPU), and the
// machine's floors measured in the same run: a 2048³ fp32 MatMul and 2048³
// DynamicQuantizeLinear + MatMulInteger, u8×u8 and u8×s8 with weights in ±63 and in ±127. Ratios to the floor are what to compare across runs of a
// shared machine; the load average is printed beside them.
//
// Fidelity (numerical, not accuracy: the weights are random): cosine of int8 to fp32 image
// embeddings and dense features, minimum over images, on the plain model and on one with
// LayerNorm gain outliers (make-model --outliers: 2 channels ×30 in every block, the stress
// real CLIP towers put on int8 activations), on generated images and on the real images under
// --data (decoded and preprocessed as the service does).
//
// --winclip adds WinCLIP's window graph (batch 1, 3 runs per precision) and its window-embedding cosine.
// --profile adds an ONNX Runtime session profile of each tower variant at batch 1: kernel time per
// operator type (after a warm-up run), to see what the int8 tower spends beside its int8 GEMMs;
// with --winclip also of the fp32 and int8-s8 window graphs.
//
// Output: a table, then one JSON line per figure:
//   {"name", "median_ms", "p95_ms", "floor_ms", "ratio_to_floor"} (speed)
//   {"name", "min_cosine", "images"} (fidelity)
import { existsSync, readdirSync, readFileSync, statSync, mkdirSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import ort from 'onnxruntime-node';
import { generateModel, isArchName } from '../src/dev/random-model.ts';
import { loadClipWeights } from '../src/clip/weights/clip-weights.ts';
import { readClipConfig } from '../src/clip/config.ts';
import { ensureGraph, ensureGraphs } from '../src/clip/onnx/graph-cache.ts';
import { DEFAULT_WINDOW_SIZES, windowGraphSpec, windowOutputName } from '../src/methods/winclip/window-graph.ts';
import { GraphBuilder } from '../src/clip/onnx/graph-builder.ts';
import { calibrationImages } from '../src/clip/onnx/int8-calibration.ts';
import { defaultDenseLayers, defaultDenseStart } from '../src/clip/onnx/dense-defaults.ts';
import { readPreprocessorConfig, toPixelValues } from '../src/clip/input/preprocess.ts';
import { decodeImage } from '../src/imaging/decode.ts';
import type { ImageGraphOptions } from '../src/clip/types.ts';

const { values } = parseArgs({
  options: {
    arch: { type: 'string', default: 'vit-b-16' },
    runs: { type: 'string', default: '10' },
    data: { type: 'string' },
    images: { type: 'string', default: '12' },
    threads: { type: 'string' },
    'no-fidelity': { type: 'boolean', default: false },
    winclip: { type: 'boolean', default: false },
    spin: { type: 'boolean', default: false },
    profile: { type: 'boolean', default: false },
  },
});
const archName = values.arch!;
if (!isArchName(archName)) throw new Error(`unknown arch ${archName}`);
const arch = archName;
const runs = Math.max(3, Number(values.runs));
const threads = values.threads ? Number(values.threads) : availableParallelism();
// Spinning off, as the service runs by default (INTRA_OP_SPINNING=0): with it on, the idle
// sessions' spinning threads take the cores from the one running (4 sessions interleaved here),
// which cost the short int8 runs most (measured: s8 1.87× fp32 with spinning, 2.44× without).
const sessionOptions: ort.InferenceSession.SessionOptions = {
  graphOptimizationLevel: 'all',
  intraOpNumThreads: threads,
  interOpNumThreads: 1,
  executionMode: 'sequential',
  extra: { 'session.intra_op.allow_spinning': values.spin ? '1' : '0' },
};
const cacheDir = resolve('.cache/bench-int8');
mkdirSync(cacheDir, { recursive: true });

function modelFolder(outliers: boolean): string {
  const dir = resolve(`models/bench-${arch}${outliers ? '-outliers' : ''}`);
  if (!existsSync(join(dir, 'config.json')) && !existsSync(join(dir, 'open_clip_config.json'))) {
    console.log(`generating ${arch}${outliers ? ' with LayerNorm outliers' : ''} (random weights) into ${dir} …`);
    generateModel({ arch, seed: 1, out: dir, ...(outliers ? { outliers: { channels: 2, factor: 30 } } : {}) });
  }
  return dir;
}

type Variant = 'fp32' | 'int8' | 'int8-s7' | 'int8-s8';
const VARIANTS: Variant[] = ['fp32', 'int8', 'int8-s7', 'int8-s8'];
const INT8_VARIANTS = ['int8', 'int8-s7', 'int8-s8'] as const;
/** The weight format a variant's graphs are built with ('int8' is the u8 one). */
const weightsOf = (v: Variant) => (v === 'int8-s7' ? ('s7' as const) : v === 'int8-s8' ? ('s8' as const) : undefined);

async function graphsFor(dir: string, precision: Variant) {
  const { config } = readClipConfig(dir);
  const options: ImageGraphOptions = {
    imageSize: config.vision.imageSize,
    denseLayers: defaultDenseLayers(config.vision.layers),
    denseStart: defaultDenseStart(config.vision.layers),
    denseAttention: 'vv',
    ...(precision !== 'fp32' ? { precision: 'int8' as const } : {}),
    ...(weightsOf(precision) ? { int8Weights: weightsOf(precision) } : {}),
  };
  const t = performance.now();
  const built = await ensureGraphs(dir, cacheDir, options, async () => (await loadClipWeights(dir)).weights);
  if (built.built) console.log(`built ${precision} graphs for ${dir} in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  return { ...built, size: options.imageSize };
}

function stats(samples: number[]) {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)];
  return { median: at(0.5), p95: at(0.95) };
}

async function timeRuns(session: ort.InferenceSession, feeds: Record<string, ort.Tensor>, n = runs) {
  await session.run(feeds); // warm-up
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const start = performance.now();
    await session.run(feeds);
    samples.push(performance.now() - start);
  }
  return stats(samples);
}

/** The floors: one 2048³ MatMul in fp32 and in int8 (DynamicQuantizeLinear + MatMulInteger u8×u8). */
async function floors(): Promise<Record<'fp32' | 'int8' | 'int8-s7' | 'int8-s8', ReturnType<typeof stats>>> {
  const n = 2048;
  const out: Record<string, ReturnType<typeof stats>> = {};
  for (const kind of ['fp32', 'int8', 'int8-s7', 'int8-s8'] as const) {
    const path = join(cacheDir, `floor-${kind}.onnx`);
    if (!existsSync(path)) {
      const g = new GraphBuilder(path, `floor_${kind}`);
      const x = g.input('x', 'float32', [n, n]);
      if (kind === 'fp32') {
        g.output(g.op('MatMul', [x, g.weight('w', new Float32Array(n * n).map((_, i) => Math.sin(i)), [n, n])]), 'y', 'float32', [n, n]);
      } else {
        const signed = kind !== 'int8';
        const levels = kind === 'int8-s7' ? 63 : 127;
        const wq = signed
          ? g.weightI8('w', new Int8Array(n * n).map((_, i) => Math.round(levels * Math.sin(i))), [n, n])
          : g.weightU8('w', new Uint8Array(n * n).map((_, i) => 128 + Math.round(127 * Math.sin(i))), [n, n]);
        const [q, s, z] = g.opN('DynamicQuantizeLinear', [x], 3);
        const y = g.op('MatMulInteger', [q, wq, z, signed ? g.constI8([0]) : g.constU8([128])]);
        g.output(g.op('Mul', [g.op('Cast', [y], { to: 1 }), g.op('Mul', [s, g.weight('ws', new Float32Array(n).fill(0.01), [n])])]), 'y', 'float32', [n, n]);
      }
      g.save();
    }
    const session = await ort.InferenceSession.create(path, sessionOptions);
    out[kind] = await timeRuns(session, { x: new ort.Tensor('float32', new Float32Array(n * n).map((_, i) => Math.cos(i)), [n, n]) });
    await session.release();
  }
  return out as Record<'fp32' | 'int8' | 'int8-s7' | 'int8-s8', ReturnType<typeof stats>>;
}

function cosine(a: Float32Array, b: Float32Array, off = 0, len = a.length): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = off; i < off + len; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return ab / Math.sqrt(aa * bb);
}

/** Real images under `root` (recursively; masks left out), at most `limit`, spread over the folders. */
function realImages(root: string, limit: number): string[] {
  if (!existsSync(root)) return [];
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) {
        if (name !== 'ground_truth') walk(p);
      } else if (/\.(png|jpe?g|bmp)$/i.test(name)) found.push(p);
    }
  };
  walk(root);
  const step = Math.max(1, Math.floor(found.length / limit));
  return found.filter((_, i) => i % step === 0).slice(0, limit);
}

interface Fidelity {
  embed: number;
  dense: number;
  densePatch: number;
  count: number;
}

/** Min cosines int8 vs fp32 over images given as [count, 3, S, S]. */
async function fidelity(fp32: ort.InferenceSession, int8: ort.InferenceSession, pixels: Float32Array, count: number, size: number): Promise<Fidelity> {
  const plane = 3 * size * size;
  const f: Fidelity = { embed: 1, dense: 1, densePatch: 1, count };
  for (let n = 0; n < count; n++) {
    const feeds = { pixel_values: new ort.Tensor('float32', pixels.slice(n * plane, (n + 1) * plane), [1, 3, size, size]) };
    const a = await fp32.run(feeds);
    const b = await int8.run(feeds);
    f.embed = Math.min(f.embed, cosine(a.image_embeds.data as Float32Array, b.image_embeds.data as Float32Array));
    const da = a.dense_features.data as Float32Array;
    const db = b.dense_features.data as Float32Array;
    const [, layers, patches, dim] = a.dense_features.dims;
    for (let l = 0; l < layers; l++) {
      f.dense = Math.min(f.dense, cosine(da, db, l * patches * dim, patches * dim));
      for (let p = 0; p < patches; p++) f.densePatch = Math.min(f.densePatch, cosine(da, db, (l * patches + p) * dim, dim));
    }
  }
  return f;
}

const lines: object[] = [];
const table: string[] = [];
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');
const loadStart = load();

const floor = await floors();
lines.push({ name: 'floor.matmul_fp32_2048', median_ms: floor.fp32.median, p95_ms: floor.fp32.p95, floor_ms: floor.fp32.median, ratio_to_floor: 1 });
table.push(`2048³ MatMul fp32:            median ${floor.fp32.median.toFixed(1)} ms (${((2 * 2048 ** 3) / floor.fp32.median / 1e6).toFixed(0)} GFLOP/s)`);
const INT8_FLOORS = [
  ['int8', 'u8u8', 'u8×u8:   ', ''],
  ['int8-s7', 'u8s7', 'u8×s8 (±63):', ''],
  ['int8-s8', 'u8s8', 'u8×s8 (±127):', '; exact only with VNNI'],
] as const;
for (const [kind, name, label, note] of INT8_FLOORS) {
  const f = floor[kind];
  lines.push({ name: `floor.matmulinteger_${name}_2048`, median_ms: f.median, p95_ms: f.p95, floor_ms: floor.fp32.median, ratio_to_floor: f.median / floor.fp32.median });
  table.push(`2048³ MatMulInteger ${label} median ${f.median.toFixed(1)} ms (${(floor.fp32.median / f.median).toFixed(2)}× the fp32 MatMul's speed${note})`);
}

const plainDir = modelFolder(false);
const allGraphs = async (dir: string) => ({ fp32: await graphsFor(dir, 'fp32'), int8: await graphsFor(dir, 'int8'), 'int8-s7': await graphsFor(dir, 'int8-s7'), 'int8-s8': await graphsFor(dir, 'int8-s8') });
const plain = await allGraphs(plainDir);
const size = plain.fp32.size;
// The variants' runs interleaved (fp32, int8, int8-s7, fp32, …), so a change in the machine's
// load during the run weighs on all of them alike.
const tower: Record<string, Record<number, ReturnType<typeof stats>>> = { fp32: {}, int8: {}, 'int8-s7': {}, 'int8-s8': {} };
const sessions = await Promise.all(VARIANTS.map((v) => ort.InferenceSession.create(plain[v].imagePath, sessionOptions)));
for (const batch of [1, 8]) {
  const pixels = new Float32Array(batch * 3 * size * size).map((_, i) => Math.sin(i) * 0.5);
  const feeds = { pixel_values: new ort.Tensor('float32', pixels, [batch, 3, size, size]) };
  const samples: number[][] = VARIANTS.map(() => []);
  for (const s of sessions) await s.run(feeds); // warm-up
  const n = batch === 1 ? runs : Math.max(3, Math.ceil(runs / 2));
  for (let i = 0; i < n; i++) {
    for (const [k, s] of sessions.entries()) {
      const start = performance.now();
      await s.run(feeds);
      samples[k].push(performance.now() - start);
    }
  }
  VARIANTS.forEach((v, k) => {
    const s = stats(samples[k]);
    tower[v][batch] = s;
    lines.push({ name: `tower.${arch}.${v}.b${batch}`, median_ms: s.median, p95_ms: s.p95, floor_ms: floor.fp32.median, ratio_to_floor: s.median / floor.fp32.median });
  });
}
for (const s of sessions) await s.release();
for (const batch of [1, 8]) {
  const a = tower.fp32[batch];
  table.push(`image tower b${batch} fp32:           median ${a.median.toFixed(0)} ms, p95 ${a.p95.toFixed(0)} ms (${(a.median / floor.fp32.median).toFixed(2)}× the 2048³ fp32 MatMul)`);
  for (const v of INT8_VARIANTS) {
    const b = tower[v][batch];
    table.push(`image tower b${batch} ${v.padEnd(8)}:      median ${b.median.toFixed(0)} ms, p95 ${b.p95.toFixed(0)} ms: ${(a.median / b.median).toFixed(2)}× faster than fp32`);
    lines.push({ name: `tower.${arch}.${v}_vs_fp32.b${batch}`, median_ms: b.median, p95_ms: b.p95, floor_ms: a.median, ratio_to_floor: b.median / a.median });
  }
}

/** Kernel time per operator type (ms per run) of `path` at batch 1, from ORT's session profile. */
async function profileByOp(path: string, n = runs): Promise<{ wall: number; kernels: number; ops: [string, number, number][] }> {
  const prefix = join(cacheDir, `profile-${process.pid}`);
  const session = await ort.InferenceSession.create(path, { ...sessionOptions, enableProfiling: true, profileFilePrefix: prefix });
  const feeds = { pixel_values: new ort.Tensor('float32', new Float32Array(3 * size * size).map((_, i) => Math.sin(i) * 0.5), [1, 3, size, size]) };
  await session.run(feeds);
  const start = performance.now();
  for (let i = 0; i < n; i++) await session.run(feeds);
  const wall = (performance.now() - start) / n;
  session.endProfiling();
  await session.release();
  const file = readdirSync(cacheDir).find((f) => f.startsWith(`profile-${process.pid}`))!;
  type Event = { cat: string; name: string; ts: number; dur: number; args: { op_name?: string } };
  const events = JSON.parse(readFileSync(join(cacheDir, file), 'utf8')) as Event[];
  rmSync(join(cacheDir, file));
  const warmUp = events.find((e) => e.cat === 'Session' && e.name === 'model_run')!;
  const byOp = new Map<string, { us: number; nodes: number }>();
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time') || e.ts < warmUp.ts + warmUp.dur) continue;
    const r = byOp.get(e.args.op_name!) ?? { us: 0, nodes: 0 };
    r.us += e.dur;
    r.nodes += 1;
    byOp.set(e.args.op_name!, r);
  }
  const ops = [...byOp].map(([op, r]) => [op, r.us / n / 1000, r.nodes / n] as [string, number, number]).sort((a, b) => b[1] - a[1]);
  return { wall, kernels: ops.reduce((t, o) => t + o[1], 0), ops };
}

if (values.profile) {
  for (const v of VARIANTS) {
    const p = await profileByOp(plain[v].imagePath);
    table.push(`profile ${v} tower b1: ${p.wall.toFixed(1)} ms per run, kernels ${p.kernels.toFixed(1)} ms:`);
    for (const [op, ms, nodes] of p.ops.filter((o) => o[1] >= 0.01 * p.kernels)) {
      table.push(`  ${op.padEnd(26)} ${ms.toFixed(2).padStart(8)} ms ${((100 * ms) / p.kernels).toFixed(1).padStart(5)} % (${nodes} nodes)`);
    }
  }
}

if (values.winclip) {
  // WinCLIP's window graph (zero-shot image side), batch 1, interleaved, and the window-embedding cosine.
  const spec = windowGraphSpec({ imageSize: size, windowSizes: [...DEFAULT_WINDOW_SIZES] });
  const load = async () => (await loadClipWeights(plainDir)).weights;
  const paths = {
    fp32: (await ensureGraph(plainDir, cacheDir, spec, load)).path,
    int8: (await ensureGraph(plainDir, cacheDir, spec, load, undefined, { precision: 'int8' })).path,
    'int8-s7': (await ensureGraph(plainDir, cacheDir, spec, load, undefined, { precision: 'int8', int8Weights: 's7' })).path,
    'int8-s8': (await ensureGraph(plainDir, cacheDir, spec, load, undefined, { precision: 'int8', int8Weights: 's8' })).path,
  };
  const sessions = await Promise.all(VARIANTS.map((v) => ort.InferenceSession.create(paths[v], sessionOptions)));
  const pixels = calibrationImages(size, 1, 99);
  const feeds = { pixel_values: new ort.Tensor('float32', pixels, [1, 3, size, size]) };
  const outputs = [];
  for (const s of sessions) outputs.push(await s.run(feeds)); // warm-up, and the outputs compared
  const samples: number[][] = VARIANTS.map(() => []);
  for (let i = 0; i < 3; i++) {
    for (const [k, s] of sessions.entries()) {
      const start = performance.now();
      await s.run(feeds);
      samples[k].push(performance.now() - start);
    }
  }
  const base = stats(samples[0]);
  table.push(`WinCLIP window graph b1 fp32: median ${base.median.toFixed(0)} ms (3 runs)`);
  lines.push({ name: `winclip.${arch}.fp32.b1`, median_ms: base.median, p95_ms: base.p95, floor_ms: floor.fp32.median, ratio_to_floor: base.median / floor.fp32.median });
  for (const [k, v] of VARIANTS.entries()) {
    if (k === 0) continue;
    const s = stats(samples[k]);
    let minCos = 1;
    for (const ws of DEFAULT_WINDOW_SIZES) {
      const a = outputs[0][windowOutputName(ws)].data as Float32Array;
      const b = outputs[k][windowOutputName(ws)].data as Float32Array;
      const dim = outputs[0][windowOutputName(ws)].dims[2];
      for (let o = 0; o < a.length; o += dim) minCos = Math.min(minCos, cosine(a, b, o, dim));
    }
    table.push(`WinCLIP window graph b1 ${v.padEnd(8)}: median ${s.median.toFixed(0)} ms: ${(base.median / s.median).toFixed(2)}× faster than fp32, window-embedding cosine min ${minCos.toFixed(5)}`);
    lines.push({ name: `winclip.${arch}.${v}_vs_fp32.b1`, median_ms: s.median, p95_ms: s.p95, floor_ms: base.median, ratio_to_floor: s.median / base.median });
    lines.push({ name: `fidelity.${arch}.${v}.winclip.window_embeds`, min_cosine: minCos, images: 1 });
  }
  for (const s of sessions) await s.release();
  if (values.profile) {
    for (const v of ['fp32', 'int8-s8'] as const) {
      const p = await profileByOp(paths[v], 2);
      table.push(`profile ${v} WinCLIP window graph b1: ${p.wall.toFixed(1)} ms per run, kernels ${p.kernels.toFixed(1)} ms:`);
      for (const [op, ms, nodes] of p.ops.filter((o) => o[1] >= 0.01 * p.kernels)) {
        table.push(`  ${op.padEnd(26)} ${ms.toFixed(2).padStart(8)} ms ${((100 * ms) / p.kernels).toFixed(1).padStart(5)} % (${nodes} nodes)`);
      }
    }
  }
}

if (!values['no-fidelity']) {
  // ../shared/data beside the checkout (or beside the worktrees' folder).
  const dataDir = values.data ?? ['../shared/data', '../../shared/data'].find((d) => existsSync(d)) ?? '../shared/data';
  const files = realImages(resolve(dataDir), Number(values.images));
  if (!files.length) console.log(`no images under ${resolve(dataDir)}: fidelity on generated images only`);
  const preprocess = readPreprocessorConfig(JSON.parse(readFileSync(join(plainDir, 'preprocessor_config.json'), 'utf8')));
  preprocess.size = size;
  const decoded = await Promise.all(files.map(async (f) => decodeImage(readFileSync(f))));
  const real = decoded.length ? toPixelValues(decoded, preprocess) : new Float32Array(0);
  const generatedCount = 4;
  // Other images than the calibration's (another seed).
  const generated = calibrationImages(size, generatedCount, 1234);
  for (const outliers of [false, true]) {
    const dir = outliers ? modelFolder(true) : plainDir;
    const graphs = outliers ? await allGraphs(dir) : plain;
    const a = await ort.InferenceSession.create(graphs.fp32.imagePath, sessionOptions);
    const model = outliers ? `${arch}-outliers` : arch;
    for (const v of INT8_VARIANTS) {
      const b = await ort.InferenceSession.create(graphs[v].imagePath, sessionOptions);
      for (const [set, pixels, count] of [['generated', generated, generatedCount], ['real', real, decoded.length]] as const) {
        if (!count) continue;
        const f = await fidelity(a, b, pixels, count, size);
        table.push(`cosine ${v}/fp32 ${model.padEnd(18)} ${set.padEnd(9)} (${count} images): embeds ${f.embed.toFixed(5)}, dense ${f.dense.toFixed(5)}, dense per patch ${f.densePatch.toFixed(5)}`);
        lines.push({ name: `fidelity.${model}.${v}.${set}.image_embeds`, min_cosine: f.embed, images: count });
        lines.push({ name: `fidelity.${model}.${v}.${set}.dense_features`, min_cosine: f.dense, images: count });
        lines.push({ name: `fidelity.${model}.${v}.${set}.dense_per_patch`, min_cosine: f.densePatch, images: count });
      }
      await b.release();
    }
    await a.release();
  }
}

console.log(`\nint8 benchmark: ${arch} (random weights), ${size}px, ${availableParallelism()} cores, ONNX Runtime threads ${threads}, runs ${runs}`);
console.log(`load average at start ${loadStart}, at end ${load()}`);
for (const row of table) console.log(`  ${row}`);
console.log('');
for (const line of lines) console.log(JSON.stringify(line));
