// `npm run bench:batch [-- --model DIR --sizes 8,32,64,128 --budget 900]`: batches end to end
// on a full-size model with random weights (default: models/bench-vit-b-16, generated when
// missing; any checkpoint folder with --model), each measurement in its own child process so
// "peak RSS" is that run's own peak (main thread and inference workers together):
// 1. MuSc scoring only (bench/musc.bench.ts, the same as `npm run bench:musc`): random unit
//    tokens of the model's real size, 768 channels (ViT-B's patch tokens), 1 and 2 threads.
// 2. MuSc end to end: N generated 224×224 PNGs through ClipDetector.detectBatch with
//    method=musc, map=none: decoding, the token graph (image tower), mutual scoring, RsCIN and
//    the responses. Seconds per image, the encode and scoring parts, peak RSS, RSS once loaded.
// 3. dense-frequency: the same images one per session run (score, the former batch path) and
//    SESSION_BATCH_IMAGES per session run (scoreBatch), 4 rounds in alternating order; images/s
//    and the ratio per round (--skip-scoring, --skip-musc leave parts out).
// N = 128 runs only when N = 64's time projects (×4 for the scoring, ×2 for the rest) under
// --budget seconds. Figures move with the machine's load: the load average is printed.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { generateModel } from '../src/dev/random-model.ts';
import { createClipDetector } from '../src/detection/clip-detector.ts';
import type { DetectOptions } from '../src/detection/types.ts';
import type { MethodRequest } from '../src/methods/contract.ts';
import { SESSION_BATCH_IMAGES } from '../src/methods/dense-frequency/method.ts';
import { loadSettings } from '../src/settings.ts';

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    sizes: { type: 'string', default: '8,32,64,128' },
    budget: { type: 'string', default: '900' },
    'skip-scoring': { type: 'boolean', default: false },
    'skip-musc': { type: 'boolean', default: false },
    'dense-images': { type: 'string', default: '32' },
    run: { type: 'string' },
  },
});
const model = resolve(values.model ?? 'models/bench-vit-b-16');
const self = fileURLToPath(import.meta.url);
const cacheDir = process.env.MODEL_CACHE_DIR ?? resolve('models/cache');

/** N distinct 224×224 textures (seeded noise on stripes), every 8th with a bright square. */
async function images(n: number): Promise<Buffer[]> {
  const size = 224;
  return Promise.all(
    Array.from({ length: n }, (_, k) => {
      let s = (k + 1) * 2654435761;
      const rand = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32);
      const rgb = Buffer.alloc(size * size * 3);
      for (let y = 0; y < size; y++) {
        for (let x = 0; x < size; x++) {
          const v = Math.round(((x + y) % 16 < 8 ? 90 : 150) + (rand() - 0.5) * 30);
          const i = (y * size + x) * 3;
          const square = k % 8 === 7 && x >= 80 && x < 120 && y >= 60 && y < 100;
          rgb[i] = square ? 255 : v;
          rgb[i + 1] = square ? 255 : v;
          rgb[i + 2] = square ? 255 : Math.round(v * 0.8);
        }
      }
      return sharp(rgb, { raw: { width: size, height: size, channels: 3 } }).png().toBuffer();
    }),
  );
}

async function openDetector(musc: boolean) {
  // No job timeout: MuSc's scoring of one large batch is one worker job, and on a loaded machine
  // N = 128 outlasts the default JOB_TIMEOUT_MS (120 s) — what is measured here is the time it takes.
  const settings = loadSettings(process.env, { model, cacheDir, offline: '1', winclip: '0', musc: musc ? '1' : '0', logLevel: 'silent', maxQueue: '1024', jobTimeoutMs: '0' });
  return createClipDetector(settings);
}

const rssMiB = () => process.memoryUsage().rss / 2 ** 20;
const peakMiB = () => process.resourceUsage().maxRSS / 1024;

interface MuscRun {
  images: number;
  seconds: number;
  encodeSeconds: number;
  scoreSeconds: number;
  loadedRssMiB: number;
  peakRssMiB: number;
  top: number;
}

async function runMusc(n: number): Promise<MuscRun> {
  const uploads = await images(n);
  const detector = await openDetector(true);
  const loadedRssMiB = rssMiB();
  const options: DetectOptions = { category: 'part', prompts: { mode: 'templated' }, map: 'none', threshold: 0.5, branches: false, method: 'musc' };
  const t0 = performance.now();
  const batch = await detector.detectBatch(uploads, options);
  const seconds = (performance.now() - t0) / 1000;
  const first = batch.items[0];
  if (!first.ok) throw first.error;
  const scores = batch.items.map((it) => (it.ok ? it.result.score : NaN));
  await detector.close();
  return {
    images: n,
    seconds,
    // Every item carries the batch's whole encode and scoring time.
    encodeSeconds: first.result.timingsMs.encode / 1000,
    scoreSeconds: first.result.timingsMs.score / 1000,
    loadedRssMiB,
    peakRssMiB: peakMiB(),
    top: scores.indexOf(Math.max(...scores)),
  };
}

const ROUNDS = 4;

interface DenseRun {
  images: number;
  single: number[];
  batched: number[];
  maxScoreDiff: number;
}

async function runDense(n: number): Promise<DenseRun> {
  const uploads = await images(n);
  const detector = await openDetector(false);
  const decoded = await Promise.all(uploads.map((b) => detector.decode(b)));
  const { runner } = detector.method('dense-frequency');
  const requests: MethodRequest[] = decoded.map((image) => ({ image, references: [], category: 'part', prompts: { mode: 'templated' }, threshold: 0.5, partMaps: false }));
  const single: number[] = [];
  const batched: number[] = [];
  let maxScoreDiff = 0;
  const one = new Array<number>(n);
  const runSingle = async () => {
    const t = performance.now();
    // The former batch path: one image per session run, one at a time per worker.
    let next = 0;
    await Promise.all(Array.from({ length: detector.capacity }, async () => {
      while (next < n) {
        const i = next++;
        one[i] = (await runner.score(requests[i])).score;
      }
    }));
    single.push(n / ((performance.now() - t) / 1000));
  };
  const runBatched = async () => {
    const t = performance.now();
    const many = await runner.scoreBatch!(requests);
    batched.push(n / ((performance.now() - t) / 1000));
    return many;
  };
  // The order alternates (AB, BA, …) so a load that changes during the run favours neither.
  for (let round = 0; round < ROUNDS; round++) {
    let many;
    if (round % 2 === 0) {
      await runSingle();
      many = await runBatched();
    } else {
      many = await runBatched();
      await runSingle();
    }
    many.forEach((o, i) => (maxScoreDiff = Math.max(maxScoreDiff, Math.abs(o.score - one[i]))));
  }
  await detector.close();
  return { images: n, single, batched, maxScoreDiff };
}

function child<T>(args: string): T {
  const out = execFileSync(process.execPath, ['--import', 'tsx', self, '--model', model, '--run', args], { encoding: 'utf8', maxBuffer: 1 << 24 });
  return JSON.parse(out.trim().split('\n').pop() as string) as T;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const load = () => loadavg().map((v) => v.toFixed(2)).join(', ');

if (values.run) {
  const [kind, n] = values.run.split(':');
  console.log(JSON.stringify(kind === 'musc' ? await runMusc(Number(n)) : await runDense(Number(n))));
} else {
  if (!existsSync(join(model, 'config.json')) && !existsSync(join(model, 'open_clip_config.json'))) {
    console.log(`generating vit-b-16 with random weights into ${model} …`);
    generateModel({ arch: 'vit-b-16', seed: 1, out: model });
  }
  // One load first, so the graphs are built (and cached) before anything is timed.
  console.log(`model ${model}; graphs in ${cacheDir}; load average ${load()}`);
  await (await openDetector(true)).close();
  const sizes = values.sizes.split(',').map(Number);
  const budget = Number(values.budget);

  if (!values['skip-scoring']) {
    console.log('\n1. MuSc scoring only (random tokens; npm run bench:musc)');
    const out = execFileSync(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./musc.bench.ts', import.meta.url)), '--sizes', sizes.join(','), '--channels', '768', '--threads', '1,2', '--budget', String(budget / 4)], { encoding: 'utf8' });
    process.stdout.write(out);
  }

  if (!values['skip-musc']) {
    console.log(`\n2. MuSc end to end (decode, token graph, mutual scoring, RsCIN, responses; 224×224 PNGs); load average ${load()}`);
    console.log('  N   s/image  encode s/img  score s/img  total s  RSS loaded  peak RSS  load(1m)  top image');
    let previous: MuscRun | undefined;
    for (const n of sizes) {
      if (n >= 128 && previous?.images === 64 && previous.scoreSeconds * 4 + (previous.seconds - previous.scoreSeconds) * 2 > budget) {
        console.log(`${String(n).padStart(3)}  skipped: N = 64 took ${previous.seconds.toFixed(0)} s; N = 128 projects over ${budget} s`);
        continue;
      }
      const r = child<MuscRun>(`musc:${n}`);
      previous = r;
      console.log(
        [
          String(n).padStart(3),
          (r.seconds / n).toFixed(3).padStart(9),
          (r.encodeSeconds / n).toFixed(3).padStart(13),
          (r.scoreSeconds / n).toFixed(3).padStart(12),
          r.seconds.toFixed(1).padStart(8),
          `${r.loadedRssMiB.toFixed(0)} MiB`.padStart(11),
          `${r.peakRssMiB.toFixed(0)} MiB`.padStart(9),
          loadavg()[0].toFixed(2).padStart(9),
          `  #${r.top}${r.top % 8 === 7 ? ' (a square)' : ''}`,
        ].join(' '),
      );
    }
  }

  const n = Number(values['dense-images']);
  console.log(`\n3. dense-frequency, ${n} images: 1 per session run vs ${SESSION_BATCH_IMAGES} per session run (${ROUNDS} rounds, order alternated); load average ${load()}`);
  const d = child<DenseRun>(`dense:${n}`);
  console.log(`  single  ${d.single.map((v) => v.toFixed(2)).join(' ')} img/s (median ${median(d.single).toFixed(2)})`);
  console.log(`  batched ${d.batched.map((v) => v.toFixed(2)).join(' ')} img/s (median ${median(d.batched).toFixed(2)})`);
  const ratios = d.batched.map((b, i) => b / d.single[i]);
  console.log(`  batched / single per round ${ratios.map((r) => r.toFixed(2)).join(' ')} (median ${median(ratios).toFixed(2)}×); largest score difference ${d.maxScoreDiff.toExponential(1)}`);
  console.log(`load average after: ${load()} (2 cores shared; busy neighbours slow every figure)`);
}
