// `node --import tsx bench/musc.bench.ts [--sizes 8,32,64,128] [--channels 768,512] [--threads 1,2]`
// MuSc's scoring alone (no image tower) on random unit tokens of the real size: 4 layers,
// 14×14 = 196 patches, r ∈ {1, 3, 5}, RsCIN on random embeddings. Times everything after the
// graph: LayerNorm, LNAMD norms, mutual scoring, interval averages, maps and RsCIN. Every
// configuration runs in its own child process, so "peak RSS" is that run's own peak (all threads).
// N = 128 runs only when N = 64's time projects (×4, the work grows with N²) under --budget s.
// The last column is a hash of the maps and scores: equal for 1 and 2 threads (bit-identical).
// Reference (the brief): the authors' PyTorch code on this 2-core machine, 512 channels,
// 0.81 s/image at N = 32 and 1.18 s/image at N = 64.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import type { MuscFeatures } from '../src/methods/musc/features.ts';
import { MuscBatch, muscDistanceLength } from '../src/methods/musc/musc.ts';
import { balancedOwnerRanges, MutualScorer } from '../src/methods/musc/msm.ts';

const LAYERS = 4;
const GRID = { h: 14, w: 14 };
const EMBED = 512;
const AUTHORS: Record<number, number> = { 32: 0.81, 64: 1.18 };

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '8,32,64,128' },
    channels: { type: 'string', default: '768,512' },
    threads: { type: 'string', default: '1,2' },
    budget: { type: 'string', default: '120' },
    run: { type: 'string' },
  },
});

/** Unit vectors from a seeded generator (Box–Muller on a 32-bit LCG). */
function unitRows(rows: number, dim: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const uniform = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 0.5) / 2 ** 32;
  const out = new Float32Array(rows * dim);
  for (let r = 0; r < rows; r++) {
    let sq = 0;
    for (let c = 0; c < dim; c++) {
      const v = Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
      out[r * dim + c] = v;
      sq += v * v;
    }
    const inv = 1 / Math.sqrt(sq);
    for (let c = 0; c < dim; c++) out[r * dim + c] *= inv;
  }
  return out;
}

interface RunResult {
  images: number;
  channels: number;
  threads: number;
  seconds: number;
  cpuSeconds: number;
  prepareSeconds: number;
  msmSeconds: number;
  reduceSeconds: number;
  peakRssMiB: number;
  resultHash: string;
}

async function runOne(images: number, channels: number, threads: number): Promise<RunResult> {
  const L = GRID.h * GRID.w;
  const features: MuscFeatures = {
    tokens: unitRows(images * LAYERS * L, channels, 1),
    images,
    layers: LAYERS,
    grid: GRID,
    width: channels,
    imageEmbeds: unitRows(images, EMBED, 2),
    embedDim: EMBED,
  };
  const workers =
    threads > 1 ? Array.from({ length: threads }, () => new Worker(new URL('./musc-worker.mjs', import.meta.url))) : [];
  await Promise.all(workers.map((w) => new Promise((ok) => w.once('message', ok)))); // 'ready'
  const ranges = balancedOwnerRanges(images, threads);
  const scorer = threads > 1 ? undefined : new MutualScorer();
  const distances = new Float32Array(new SharedArrayBuffer(4 * muscDistanceLength(features)));
  const normed = new Float32Array(new SharedArrayBuffer(4 * images * L * channels));
  const times = { prepare: 0, msm: 0, reduce: 0 };
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const batch = new MuscBatch(features, { imageSize: 224 }, distances);
  for (let l = 0; l < LAYERS; l++) {
    let t = performance.now();
    const layer = batch.layer(l, normed);
    times.prepare += performance.now() - t;
    t = performance.now();
    if (scorer) {
      scorer.setLayer(layer);
      scorer.minDistances(0, images, distances);
    } else {
      await Promise.all(
        workers.map((w, k) => {
          const done = new Promise((ok) => w.once('message', ok));
          w.postMessage({ layer, from: ranges[k].from, to: ranges[k].to, out: distances });
          return done;
        }),
      );
    }
    times.msm += performance.now() - t;
    t = performance.now();
    batch.addLayer(l);
    times.reduce += performance.now() - t;
  }
  let t = performance.now();
  const result = batch.finish();
  times.reduce += performance.now() - t;
  const hash = createHash('sha256');
  for (const a of [result.maps, result.mapScores, result.scores]) hash.update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  await Promise.all(workers.map((w) => w.terminate()));
  return {
    images,
    channels,
    threads,
    seconds,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    prepareSeconds: times.prepare / 1000,
    msmSeconds: times.msm / 1000,
    reduceSeconds: times.reduce / 1000,
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
    resultHash: hash.digest('hex').slice(0, 12),
  };
}

if (values.run) {
  const [n, c, t] = values.run.split(',').map(Number);
  console.log(JSON.stringify(await runOne(n, c, t)));
} else {
  const list = (s: string) => s.split(',').map(Number);
  const budget = Number(values.budget);
  const self = fileURLToPath(import.meta.url);
  console.log(`MuSc scoring, ${LAYERS} layers, ${GRID.h}×${GRID.w} patches, r ∈ {1,3,5}; load average before: ${loadavg()[0].toFixed(2)}`);
  console.log('  N     C  thr   s/image  cpu-s/image  prep   msm  reduce  peak RSS  result hash   vs authors (512 ch)');
  for (const channels of list(values.channels)) {
    for (const threads of list(values.threads)) {
      let previous: RunResult | undefined;
      for (const images of list(values.sizes)) {
        if (images >= 128 && previous && previous.images === 64 && previous.seconds * 4 > budget) {
          console.log(`${String(images).padStart(3)} ${String(channels).padStart(5)} ${String(threads).padStart(4)}   skipped: N = 64 took ${previous.seconds.toFixed(1)} s, ×4 > ${budget} s`);
          continue;
        }
        const out = execFileSync(process.execPath, ['--import', 'tsx', self, '--run', `${images},${channels},${threads}`], { encoding: 'utf8' });
        const r = JSON.parse(out.trim().split('\n').pop() as string) as RunResult;
        previous = r;
        const per = r.seconds / images;
        const authors = channels === 512 && AUTHORS[images] ? `${(AUTHORS[images] / per).toFixed(1)}× faster than ${AUTHORS[images]} s` : '';
        console.log(
          [
            String(images).padStart(3),
            String(channels).padStart(5),
            String(threads).padStart(4),
            per.toFixed(3).padStart(9),
            (r.cpuSeconds / images).toFixed(3).padStart(12),
            r.prepareSeconds.toFixed(1).padStart(6),
            r.msmSeconds.toFixed(1).padStart(5),
            r.reduceSeconds.toFixed(2).padStart(7),
            `${r.peakRssMiB.toFixed(0)} MiB`.padStart(9),
            ' ' + r.resultHash,
            '  ' + authors,
          ].join(' '),
        );
      }
    }
  }
  console.log(`load average after: ${loadavg()[0].toFixed(2)} (the machine's 2 cores are shared; busy neighbours slow every figure)`);
}
