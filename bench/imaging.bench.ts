// `node --import tsx bench/imaging.bench.ts [--src other/src] [--runs 15]`: time of the
// per-image resampling of a 1-megapixel (1000×1000) upload, median of --runs, as CPU time of
// this process (steady on a loaded machine) and wall time:
// - model input: RGB → 3 planes at 224×224, torch's antialiased bicubic; and as the worker
//   computes it (toPixelValues: resize fused with the normalisation, WebAssembly height pass);
// - map: a 14×14 patch grid → 1000×1000, bilinear upsampling fused with the Gaussian blur
//   (sigma 4 px at 224, i.e. ~18 px at the image size), as the scoring does;
// - eval map: a 1000×1000 map bilinearly resized to 256×256, as the evaluation does;
// - map output as the inference worker renders it (render-task.ts): upsample + blur + regions,
//   then the heatmap PNG (a map spanning the whole scale, RGB; a quiet one whose colours fit a
//   palette, indexed) and the overlay PNG (blend, contour, boxes, legend) over a 1000×1000 image.
// --src points at another checkout's src/ (e.g. an exported older commit) to compare.
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { existsSync } from 'node:fs';
import sharp from 'sharp';

const { values } = parseArgs({ options: { src: { type: 'string' }, runs: { type: 'string', default: '15' } } });
const src = values.src ? resolve(values.src) : new URL('../src', import.meta.url).pathname;
const runs = Math.max(3, Number(values.runs));
const load = (file: string) => import(pathToFileURL(`${src}/${file}`).href);

const { resizeRgbToPlanes } = await load('imaging/resample-bicubic.ts');
const { toPixelValues, CLIP_MEAN, CLIP_STD } = await load('clip/input/preprocess.ts');
const { upsampleAndBlur, upsampleBilinear } = await load('imaging/resample-maps.ts');
const { renderHeatmapPng, renderOverlayPng } = await load('imaging/heatmap.ts');
const { findRegions } = await load('scoring/regions.ts');

const W = 1000;
const H = 1000;
const rgb = new Uint8Array(W * H * 3);
for (let i = 0; i < rgb.length; i++) rgb[i] = (i * 2654435761) >>> 24;
const grid = Float32Array.from({ length: 14 * 14 }, (_, i) => Math.sin(i * 0.7) * 0.5 + 0.5);
const map = Float32Array.from({ length: W * H }, (_, i) => Math.sin(i * 0.001) * 0.5 + 0.5);
const sigma = (4 * W) / 224;

async function measure(name: string, fn: () => unknown): Promise<void> {
  await fn(); // warm-up (JIT)
  const cpu: number[] = [];
  const wall: number[] = [];
  for (let r = 0; r < runs; r++) {
    const c = process.cpuUsage();
    const t = performance.now();
    await fn();
    wall.push(performance.now() - t);
    const u = process.cpuUsage(c);
    cpu.push((u.user + u.system) / 1000);
  }
  const median = (a: number[]) => a.sort((x, y) => x - y)[a.length >> 1].toFixed(2).padStart(7);
  console.log(`${name.padEnd(44)} cpu ${median(cpu)} ms   wall ${median(wall)} ms`);
}

console.log(`src: ${src}, ${runs} runs`);
await measure('model input 1000×1000 RGB → 224×224 bicubic AA', () => resizeRgbToPlanes(rgb, W, H, 224, 224));
await measure('model input as the worker: + normalise, NCHW', () => toPixelValues([{ width: W, height: H, rgb }], { size: 224, mean: CLIP_MEAN, std: CLIP_STD }));
await measure('map 14×14 → 1000×1000 upsample + blur', () => upsampleAndBlur(grid, 14, 14, W, H, sigma));
await measure('eval map 1000×1000 → 256×256 bilinear', () => upsampleBilinear(map, H, W, 256, 256));

// Map output. CPU time counts sharp's own threads too (its PNG encoder runs there). The overlay
// is drawn over a real photo when ../shared/data has one (noise would not compress like a photo).
const repo = new URL('..', import.meta.url).pathname;
const photo = [`${repo}../shared`, `${repo}../../shared`].map((d) => `${d}/data/mpdd/metal_plate/test/good/test_00015.png`).find((f) => existsSync(f)) ?? '';
const photoRgb = existsSync(photo) ? await sharp(photo).removeAlpha().resize(W, H).raw().toBuffer() : Buffer.from(rgb);
console.log(`overlay image: ${existsSync(photo) ? photo : 'synthetic noise'}`);
const image = { width: W, height: H, rgb: photoRgb, format: 'png' };
const fullMap = upsampleAndBlur(grid, 14, 14, W, H, sigma);
const quietGrid = grid.map((v) => 0.15 + 0.1 * v); // a normal image: every value below the threshold
const quietMap = upsampleAndBlur(quietGrid, 14, 14, W, H, sigma);
const boxes = findRegions(fullMap, W, H, 0.5).map((r: { bbox: unknown }) => r.bbox);
await measure('heatmap PNG 1000×1000 (whole scale)', () => renderHeatmapPng(fullMap, W, H, 0.5));
await measure('heatmap PNG 1000×1000 (quiet map)', () => renderHeatmapPng(quietMap, W, H, 0.5));
await measure('overlay PNG 1000×1000', () => renderOverlayPng(image, fullMap, { threshold: 0.5, regions: boxes }));
await measure('upsample + blur + regions + heatmap PNG', async () => {
  const m = upsampleAndBlur(grid, 14, 14, W, H, sigma);
  findRegions(m, W, H, 0.5);
  return renderHeatmapPng(m, W, H, 0.5);
});
const sizes = [await renderHeatmapPng(fullMap, W, H, 0.5), await renderHeatmapPng(quietMap, W, H, 0.5), await renderOverlayPng(image, fullMap, { threshold: 0.5, regions: boxes })];
console.log(`PNG bytes: heatmap ${sizes[0].length}, quiet heatmap ${sizes[1].length}, overlay ${sizes[2].length}`);
