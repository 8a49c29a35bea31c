// `node --import tsx bench/imaging.bench.ts [--src other/src] [--runs 15]`: time of the
// per-image resampling of a 1-megapixel (1000×1000) upload, median of --runs, as CPU time of
// this process (steady on a loaded machine) and wall time:
// - model input: RGB → 3 planes at 224×224, torch's antialiased bicubic; and as the worker
//   computes it (toPixelValues: resize fused with the normalisation, WebAssembly height pass);
// - map: a 14×14 patch grid → 1000×1000, bilinear upsampling fused with the Gaussian blur
//   (sigma 4 px at 224, i.e. ~18 px at the image size), as the scoring does;
// - eval map: a 1000×1000 map bilinearly resized to 256×256, as the evaluation does.
// --src points at another checkout's src/ (e.g. an exported older commit) to compare.
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { src: { type: 'string' }, runs: { type: 'string', default: '15' } } });
const src = values.src ? resolve(values.src) : new URL('../src', import.meta.url).pathname;
const runs = Math.max(3, Number(values.runs));
const load = (file: string) => import(pathToFileURL(`${src}/${file}`).href);

const { resizeRgbToPlanes } = await load('imaging/resample-bicubic.ts');
const { toPixelValues, CLIP_MEAN, CLIP_STD } = await load('clip/input/preprocess.ts');
const { upsampleAndBlur, upsampleBilinear } = await load('imaging/resample-maps.ts');

const W = 1000;
const H = 1000;
const rgb = new Uint8Array(W * H * 3);
for (let i = 0; i < rgb.length; i++) rgb[i] = (i * 2654435761) >>> 24;
const grid = Float32Array.from({ length: 14 * 14 }, (_, i) => Math.sin(i * 0.7) * 0.5 + 0.5);
const map = Float32Array.from({ length: W * H }, (_, i) => Math.sin(i * 0.001) * 0.5 + 0.5);
const sigma = (4 * W) / 224;

function measure(name: string, fn: () => unknown): void {
  fn(); // warm-up (JIT)
  const cpu: number[] = [];
  const wall: number[] = [];
  for (let r = 0; r < runs; r++) {
    const c = process.cpuUsage();
    const t = performance.now();
    fn();
    wall.push(performance.now() - t);
    const u = process.cpuUsage(c);
    cpu.push((u.user + u.system) / 1000);
  }
  const median = (a: number[]) => a.sort((x, y) => x - y)[a.length >> 1].toFixed(2).padStart(7);
  console.log(`${name.padEnd(44)} cpu ${median(cpu)} ms   wall ${median(wall)} ms`);
}

console.log(`src: ${src}, ${runs} runs`);
measure('model input 1000×1000 RGB → 224×224 bicubic AA', () => resizeRgbToPlanes(rgb, W, H, 224, 224));
measure('model input as the worker: + normalise, NCHW', () => toPixelValues([{ width: W, height: H, rgb }], { size: 224, mean: CLIP_MEAN, std: CLIP_STD }));
measure('map 14×14 → 1000×1000 upsample + blur', () => upsampleAndBlur(grid, 14, 14, W, H, sigma));
measure('eval map 1000×1000 → 256×256 bilinear', () => upsampleBilinear(map, H, W, 256, 256));
