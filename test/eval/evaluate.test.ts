// The evaluation end to end on a synthetic MVTec-layout dataset made here with sharp:
// - an oracle detector (the map is the planted square) pins the map/mask alignment: every
//   metric must come out exactly 1;
// - the real detector on the tiny generated model must give the same scores as the service's
//   detect();
// - the CLI writes a report, tables, plots and overlays (structure and ranges are checked,
//   never values: the tiny model has random weights).
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateModel } from '../../src/dev/random-model.ts';
import type { DecodedImage } from '../../src/imaging/decode.ts';
import { createClipDetector, type ClipDetector } from '../../src/detection/clip-detector.ts';
import type { ModelInfo } from '../../src/detection/types.ts';
import { discoverCategories, readMaskInto } from '../../src/dataset/mvtec.ts';
import { evaluateCategory, evaluateConfiguration, macroMean, type EvalDetector } from '../../src/eval/evaluate.ts';
import { aupro, auroc } from '../../src/eval/metrics.ts';
import { imageRocCurve, pixelCurves } from '../../src/eval/curves.ts';
import { linePlotSvg, svgToPng } from '../../src/eval/plots.ts';
import { createProgress, formatDuration, progressLine } from '../../src/eval/progress.ts';
import { buildReport, RANDOM_MODEL_WARNING, renderMarkdown } from '../../src/eval/report.ts';
import { expandGrid } from '../../src/eval/sweep.ts';
import { defaultScoringSettings } from '../../src/methods/dense-frequency/pipeline.ts';
import { loadSettings } from '../../src/settings.ts';
import { lcg } from '../support/lcg.ts';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

let dir: string;
let data: string;
let model: string;
let cache: string;
let detector: ClipDetector;

type Square = { x: number; y: number; w: number; h: number };

/** Grey noise (90..130) with bright squares (255): the squares are the defects. */
function texture(width: number, height: number, squares: Square[], seed: number): Buffer {
  const rand = lcg(seed);
  const rgb = Buffer.alloc(width * height * 3);
  for (let i = 0; i < width * height; i++) rgb.fill(90 + Math.floor(rand() * 40), i * 3, i * 3 + 3);
  for (const s of squares) for (let y = s.y; y < s.y + s.h; y++) rgb.fill(255, (y * width + s.x) * 3, (y * width + s.x + s.w) * 3);
  return rgb;
}

function maskOf(width: number, height: number, squares: Square[]): Buffer {
  const m = Buffer.alloc(width * height);
  for (const s of squares) for (let y = s.y; y < s.y + s.h; y++) m.fill(255, y * width + s.x, y * width + s.x + s.w);
  return m;
}

async function writeImage(file: string, raw: Buffer, width: number, height: number, channels: 1 | 3, format: 'png' | 'jpeg'): Promise<void> {
  mkdirSync(dirname(file), { recursive: true });
  // Masks as 8-bit greyscale PNG, like MVTec's (sharp would otherwise write sRGB).
  const img = channels === 1 ? sharp(raw, { raw: { width, height, channels } }).toColourspace('b-w') : sharp(raw, { raw: { width, height, channels } });
  await (format === 'png' ? img.png() : img.jpeg({ quality: 95 })).toFile(file);
}

// widget: 96×64 PNG with masks. Square edges sit on multiples of 3 (x) and 2 (y), so at a
// 32×32 pixel grid the bilinear map and the nearest mask sample the very same pixels.
const W = 96;
const H = 64;
const WIDGET_DEFECTS: Record<string, Square[]> = {
  '000': [{ x: 30, y: 20, w: 30, h: 20 }],
  '001': [
    { x: 3, y: 2, w: 9, h: 6 },
    { x: 66, y: 44, w: 24, h: 16 },
  ],
  '002': [{ x: 48, y: 10, w: 12, h: 40 }],
  '003': [{ x: 0, y: 0, w: 18, h: 12 }],
};

async function makeDataset(root: string): Promise<void> {
  const widget = join(root, 'synth', 'widget');
  for (let i = 0; i < 3; i++) await writeImage(join(widget, 'test', 'good', `00${i}.png`), texture(W, H, [], i), W, H, 3, 'png');
  for (const [stem, squares] of Object.entries(WIDGET_DEFECTS)) {
    await writeImage(join(widget, 'test', 'scratch', `${stem}.png`), texture(W, H, squares, 10 + Number(stem)), W, H, 3, 'png');
    // 003 has no mask: it must stay out of the pixel metrics.
    if (stem !== '003') await writeImage(join(widget, 'ground_truth', 'scratch', `${stem}_mask.png`), maskOf(W, H, squares), W, H, 1, 'png');
  }
  // plain_board: JPEG, portrait, no ground_truth.
  const board = join(root, 'synth', 'plain_board');
  for (let i = 0; i < 3; i++) {
    await writeImage(join(board, 'test', 'good', `g${i}.jpg`), texture(80, 96, [], 20 + i), 80, 96, 3, 'jpeg');
    await writeImage(join(board, 'test', 'dent', `d${i}.jpg`), texture(80, 96, [{ x: 10 + 10 * i, y: 30, w: 20, h: 20 }], 30 + i), 80, 96, 3, 'jpeg');
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'eval-e2e-'));
  data = join(dir, 'data');
  model = join(dir, 'tiny');
  cache = join(dir, 'cache');
  await makeDataset(data);
  generateModel({ arch: 'tiny', seed: 1, out: model });
  detector = await createClipDetector(loadSettings({}, { model, cacheDir: cache, offline: '1', workers: 1 }));
});

afterAll(async () => {
  await detector?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A detector whose map is 1 exactly on the bright squares: every metric must be 1. */
const oracle: EvalDetector = {
  async scoreDecoded({ image }: { image: DecodedImage }) {
    const map = new Float32Array(image.width * image.height);
    for (let i = 0; i < map.length; i++) map[i] = image.rgb[i * 3] > 200 ? 1 : 0;
    const score = map.reduce((a, b) => a + b, 0) / map.length;
    const grid = new Float32Array(1);
    return { outcome: { score, pImage: score, map, grid: { full: grid, fused: grid }, regions: [], encodeMs: 0, scoreMs: 0 }, textMs: 0, method: 'oracle' };
  },
  info: () => ({ id: 'oracle', source: 'local', generatedRandomModel: false, inputSize: 64, grid: 8, denseLayers: [4], denseStart: 4, denseAttention: 'vv', projectionDim: 32, promptModes: ['templated'] }),
};

describe('evaluateCategory', () => {
  it('aligns maps and masks exactly (oracle detector: every metric is 1)', async () => {
    const [widget] = discoverCategories(data, { only: ['widget'] });
    const result = await evaluateCategory(oracle, widget, defaultScoringSettings, { pixelSize: 32, concurrency: 3 });
    expect(result).toMatchObject({ images: 7, good: 3, defective: 4, pixelImages: 6 });
    expect(result.metrics).toEqual({
      imageAuroc: 1,
      imageAp: 1,
      imageF1Max: 1,
      imageF1Threshold: expect.any(Number),
      pixelAuroc: 1,
      pixelAp: 1,
      pixelF1Max: 1,
      aupro: 1,
    });
    expect(result.notes).toContain('1 defective image(s) without a mask: left out of the pixel metrics');
    // Curves end where they must: ROC at (1, 1), PRO at FPR 0.3 with PRO 1.
    expect(result.curves.imageRoc!.x.at(-1)).toBe(1);
    expect(result.curves.pro!.x.at(-1)).toBe(0.3);
    expect(result.curves.pro!.y.at(-1)).toBe(1);
    // Extremes: the highest-scored defects, the lowest, the highest-scored good images.
    expect(result.extremes.filter((e) => e.kind === 'detected').map((e) => e.image.name)).toEqual(['test/scratch/000.png', 'test/scratch/002.png', 'test/scratch/001.png']);
    expect(result.extremes.filter((e) => e.kind === 'missed').map((e) => e.image.name)).toEqual(['test/scratch/003.png']);
    expect(result.extremes.filter((e) => e.kind === 'false-alarm')).toHaveLength(3);
  });

  it('an image-only category has no pixel metrics', async () => {
    const [board] = discoverCategories(data, { only: ['plain_board'] });
    const result = await evaluateCategory(oracle, board, defaultScoringSettings, { pixelSize: 32 });
    expect(result.pixelImages).toBe(0);
    expect(result.metrics.imageAuroc).toBe(1);
    expect([result.metrics.pixelAuroc, result.metrics.pixelAp, result.metrics.aupro]).toEqual([null, null, null]);
    expect(result.curves.pro).toBeNull();
    expect(macroMean([result]).counts).toMatchObject({ imageAuroc: 1, pixelAuroc: 0 });
  });

  it('scores through the service path: the same score as detect() for every image', async () => {
    const categories = discoverCategories(data);
    const [config] = expandGrid([]);
    const lines: string[] = [];
    const progress = createProgress({ total: 13, stream: { isTTY: false, write: (t: string) => lines.push(t) } });
    const result = await evaluateConfiguration(detector, categories, config, { progress, concurrency: 2 });
    progress.done();
    expect(result.categories.map((c) => c.category.id)).toEqual(['synth/plain_board', 'synth/widget']);
    for (const c of result.categories) {
      for (const [i, image] of c.category.images.entries()) {
        const response = await detector.detect(readFileSync(image.file), {
          category: c.category.name,
          prompts: { mode: 'templated' },
          map: 'none',
          threshold: 0.5,
          branches: false,
        });
        expect(c.records[i].score).toBe(response.score);
      }
    }
    const widget = result.categories[1];
    for (const k of ['imageAuroc', 'imageAp', 'imageF1Max', 'pixelAuroc', 'pixelAp', 'aupro'] as const) {
      expect(widget.metrics[k]).toBeGreaterThanOrEqual(0);
      expect(widget.metrics[k]).toBeLessThanOrEqual(1);
    }
    expect(result.model.generatedRandomModel).toBe(true);
    expect(lines.at(-1)).toMatch(/13\/13 100%/);
    expect(lines.length).toBeLessThanOrEqual(11);
  });
});

describe('curves and plots', () => {
  it('the image ROC curve encloses exactly the AUROC (ties as diagonal steps)', () => {
    const rand = lcg(5);
    const scores = Array.from({ length: 300 }, () => Math.round(rand() * 30) / 30);
    const labels = scores.map((s) => (rand() < 0.3 + s / 2 ? 1 : 0));
    const curve = imageRocCurve(scores, labels)!;
    let area = 0;
    for (let i = 1; i < curve.x.length; i++) area += ((curve.x[i] - curve.x[i - 1]) * (curve.y[i] + curve.y[i - 1])) / 2;
    expect(area).toBeCloseTo(auroc(scores, labels), 5);
    expect(imageRocCurve([0.1, 0.2], [1, 1])).toBeNull();
  });

  it('the binned PRO curve integrates to about the exact AUPRO', () => {
    const rand = lcg(9);
    const size = 64;
    const maps: Float32Array[] = [];
    const masks: Uint8Array[] = [];
    for (let k = 0; k < 6; k++) {
      const mask = new Uint8Array(size * size);
      const map = new Float32Array(size * size);
      const x0 = Math.floor(rand() * 40);
      const y0 = Math.floor(rand() * 40);
      for (let y = 0; y < size; y++) {
        for (let x = 0; x < size; x++) {
          const inside = k % 2 === 1 && x >= x0 && x < x0 + 12 && y >= y0 && y < y0 + 8;
          mask[y * size + x] = inside ? 1 : 0;
          map[y * size + x] = rand() * 0.8 + (inside ? 0.35 : 0);
        }
      }
      maps.push(map);
      masks.push(mask);
    }
    const { pro, roc } = pixelCurves(maps, masks, size);
    let area = 0;
    for (let i = 1; i < pro!.x.length; i++) area += ((pro!.x[i] - pro!.x[i - 1]) * (pro!.y[i] + pro!.y[i - 1])) / 2;
    expect(area / 0.3).toBeCloseTo(aupro(maps, masks, { width: size, height: size }), 2);
    expect(roc!.x.at(-1)).toBe(1);
    expect(roc!.y.at(-1)).toBe(1);
  });

  it('draws a PNG with axes, a legend entry per series, and escaped names', async () => {
    const svg = linePlotSvg({
      title: 'Image ROC',
      xLabel: 'false positive rate',
      yLabel: 'true positive rate',
      xMax: 0.3,
      diagonal: true,
      series: [
        { name: 'a<b>&c', curve: { x: [0, 0.1, 0.3], y: [0, 0.5, 1] } },
        { name: 'second', curve: { x: [0, 0.3], y: [0, 0.2] } },
      ],
    });
    expect(svg).toContain('a&lt;b&gt;&amp;c');
    expect(svg.match(/<polyline/g)).toHaveLength(2);
    for (const tick of ['0.00', '0.05', '0.30']) expect(svg).toContain(`>${tick}</text>`);
    const meta = await sharp(await svgToPng(svg)).metadata();
    expect(meta.format).toBe('png');
    expect(meta.width).toBeGreaterThan(500);
  });
});

describe('progress', () => {
  it('formats a bar with rate and ETA', () => {
    expect(progressLine(45, 150, 15)).toBe('[#######-----------------]  45/150  30%  15.0 img/s  ETA 0:07');
    expect(progressLine(0, 10, 0)).toMatch(/ETA --:--$/);
    expect(formatDuration(3725)).toBe('1:02:05');
  });

  it('redraws in place on a terminal and measures the rate from the first item', () => {
    let t = 1000;
    const out: string[] = [];
    const p = createProgress({ total: 4, stream: { isTTY: true, write: (s: string) => out.push(s) }, now: () => t, intervalMs: 0 });
    t = 60_000; // a long model load before the first image
    p.tick();
    t += 1000;
    p.tick();
    expect(out.at(-1)).toMatch(/^\r\[.*\] 2\/4  50%  1\.0 img\/s  ETA 0:02/);
    p.status('c1 widget');
    expect(out.at(-1)).toContain('c1 widget');
    p.tick(2);
    p.done();
    expect(out.at(-1)).toBe('\n');
  });
});

describe('report', () => {
  it('has no warning for a real model', async () => {
    const [widget] = discoverCategories(data, { only: ['widget'] });
    const [config] = expandGrid([]);
    const evaluation = await evaluateConfiguration(oracle, [widget], config, { pixelSize: 32, extremes: 0 });
    const report = buildReport(
      { command: 'npm run eval -- --data x', dataRoot: 'x', startedAt: new Date(0), pixelSize: 32, workers: 1, concurrency: 2, totalMs: 10, detectorLoads: [] },
      [widget],
      [evaluation],
      {},
    );
    expect(report.generatedRandomModel).toBe(false);
    expect(report.warning).toBeUndefined();
    const md = renderMarkdown(report);
    expect(md).not.toContain('random weights');
    expect(md).toContain('| synth/widget | 3 | 4 | 100.0 | 100.0 | 100.0 | 100.0 | 100.0 | 100.0 |');
    expect(md).toContain('| **mean** | 3 | 4 | **100.0** |');
    expect(md).not.toContain('Sweep comparison');
  });
});

// ---------------------------------------------------------------------------------------------
// The CLI

/** Runs the CLI as `npm run eval` does, in its own process. */
function runCli(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, MODEL_CACHE_DIR: cache, HF_HUB_OFFLINE: '1', WORKERS: '1' };
  delete env.MODEL;
  return new Promise((done, fail) => {
    execFile(process.execPath, ['--import', 'tsx', 'scripts/eval.ts', ...args], { cwd: REPO, env, encoding: 'utf8', timeout: 120_000 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') fail(err);
      else done({ status: err ? (err.code as number) : 0, stdout, stderr });
    });
  });
}

async function expectPng(file: string): Promise<void> {
  expect(existsSync(file), file).toBe(true);
  const meta = await sharp(file).metadata();
  expect(meta.format).toBe('png');
  expect(meta.width).toBeGreaterThan(0);
}

describe('npm run eval', () => {
  it('writes the report, tables, plots, overlays and scores of a sweep', async () => {
    const out = join(dir, 'out-sweep');
    const run = await runCli(['--data', data, '--model', model, '--out', out, '--set', 'fusion.full=0.4,1', '--overlays', '2']);
    expect(run.status, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/48\/48 100%/); // (13 images + 11 overlays) × 2 configurations
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    expect(report).toMatchObject({
      tool: 'clip-anomaly-eval',
      reportVersion: 1,
      generatedRandomModel: true,
      warning: 'Generated model with random weights: these numbers measure nothing about detection quality.',
      dataset: { root: data },
      method: { prompts: 'templated', pixelSize: 256 },
    });
    expect(report.dataset.categories.map((c: { id: string }) => c.id)).toEqual(['synth/plain_board', 'synth/widget']);
    expect(report.configurations.map((c: { id: string; label: string }) => [c.id, c.label])).toEqual([
      ['c1', 'fusion.full=0.4'],
      ['c2', 'fusion.full=1'],
    ]);
    expect(report.configurations[1].settings.scoring.fusion).toEqual({ ...defaultScoringSettings.fusion, full: 1 });
    expect(report.timings.detectorLoads).toHaveLength(1); // scoring-only variants share the model
    for (const config of report.configurations) {
      expect(config.model).toMatchObject({ id: model, generatedRandomModel: true, denseLayers: [2, 3, 4] });
      const [board, widget] = config.categories;
      expect(board).toMatchObject({ id: 'synth/plain_board', name: 'plain board', images: 6, good: 3, defective: 3, pixelImages: 0 });
      expect(board.metrics).toMatchObject({ pixelAuroc: null, pixelAp: null, aupro: null });
      expect(widget).toMatchObject({ id: 'synth/widget', images: 7, pixelImages: 6 });
      for (const c of config.categories) {
        for (const [k, v] of Object.entries(c.metrics)) {
          if (v === null) continue;
          if (k !== 'imageF1Threshold') expect(v, `${c.id} ${k}`).toBeGreaterThanOrEqual(0);
          expect(v, `${c.id} ${k}`).toBeLessThanOrEqual(1);
        }
        expect(c.timings.wallMs).toBeGreaterThan(0);
      }
      expect(config.mean.counts).toEqual({ imageAuroc: 2, imageAp: 2, imageF1Max: 2, pixelAuroc: 1, pixelAp: 1, aupro: 1 });
      expect(config.mean.pixelAuroc).toBe(widget.metrics.pixelAuroc);
      expect(config.mean.imageAuroc).toBeCloseTo((board.metrics.imageAuroc + widget.metrics.imageAuroc) / 2, 5);

      expect(config.files.plots).toEqual([`plots/${config.id}/image-roc.png`, `plots/${config.id}/pixel-roc.png`, `plots/${config.id}/pro.png`]);
      for (const p of config.files.plots) await expectPng(join(out, p));
      // widget: 2 detected, 2 missed, 2 false alarms; plain_board has 3 defects: 2 detected, 1 missed.
      expect(widget.overlays.map((o: { kind: string }) => o.kind)).toEqual(['detected', 'detected', 'missed', 'missed', 'false-alarm', 'false-alarm']);
      expect(board.overlays).toHaveLength(5);
      for (const o of [...widget.overlays, ...board.overlays]) await expectPng(join(out, o.file));
      const csv = readFileSync(join(out, config.files.scores), 'utf8').trim().split('\n');
      expect(csv[0]).toBe('config,category,image,type,label,score,p_image');
      expect(csv).toHaveLength(14);
    }
    const md = readFileSync(join(out, 'report.md'), 'utf8');
    expect(md.split('\n')).toContain(RANDOM_MODEL_WARNING);
    expect(md).toContain('## Sweep comparison');
    expect(md).toMatch(/\| c2 \| fusion\.full=1 \|/);
    expect(md).toContain('| category | good | defective | image AUROC | image AP | image F1-max | pixel AUROC | pixel AP | AUPRO@0.3 | time (s) |');
    expect(md.match(/^\| \*\*mean\*\* \| 6 \| 7 \|/gm)).toHaveLength(2);
    expect(md).toContain('synth/widget: 1 defective image(s) without a mask');
    expect(run.stdout).toContain(RANDOM_MODEL_WARNING);
  });

  it('loads one detector per graph setting', async () => {
    const out = join(dir, 'out-layers');
    const run = await runCli(['--data', data, '--categories', 'widget', '--model', model, '--out', out, '--set', 'denseLayers=3+4,4', '--overlays', '0']);
    expect(run.status, run.stderr).toBe(0);
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    expect(report.timings.detectorLoads.map((d: { detector: unknown }) => d.detector)).toEqual([{ denseLayers: '3,4' }, { denseLayers: '4' }]);
    expect(report.configurations.map((c: { model: ModelInfo }) => c.model.denseLayers)).toEqual([[3, 4], [4]]);
    expect(report.configurations[0].categories[0].overlays).toEqual([]);
    const md = readFileSync(join(out, 'report.md'), 'utf8');
    expect(md).toMatch(/^- Model \(c1\): .*dense layers 3,4 /m);
    expect(md).toMatch(/^- Model \(c2\): .*dense layers 4 /m);
  });

  it('keeps the finished configurations of a sweep whose later configuration fails', async () => {
    const out = join(dir, 'out-partial');
    // The tiny model has 4 blocks: c1 runs, c2's model cannot be built.
    const run = await runCli(['--data', data, '--categories', 'widget', '--model', model, '--out', out, '--set', 'denseLayers=4,9', '--overlays', '0']);
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/eval: .*9/);
    expect(run.stderr).toContain(`the 1 finished configuration(s) of 2 are in ${join(out, 'report.json')}`);
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    expect(report.configurations.map((c: { id: string }) => c.id)).toEqual(['c1']);
    expect(report.configurations[0].categories[0].metrics.imageAuroc).toBeGreaterThanOrEqual(0);
    expect(report.incomplete.pending).toEqual(['c2']);
    expect(report.incomplete.error).toMatch(/9/);
    const md = readFileSync(join(out, 'report.md'), 'utf8');
    expect(md).toMatch(/^\*\*Incomplete run: it stopped with an error \(.*\); c2 is missing below\.\*\*$/m);
    expect(existsSync(join(out, 'scores-c1.csv'))).toBe(true);
  });

  it('prints its usage and explains bad arguments', async () => {
    const help = await runCli(['--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('usage: npm run eval -- --data <root>');
    expect(help.stdout).toContain('--model models/demo-tiny');

    const cases: Array<[string[], RegExp]> = [
      [[], /--data is required/],
      [['--data', join(dir, 'missing')], /data folder .*missing does not exist/],
      [['--data', data, '--categories', 'bottle'], /unknown category bottle; found: synth\/plain_board, synth\/widget/],
      [['--data', data, '--prompts', 'frozen'], /--prompts frozen: expected templated, learned, learned:<name> or the path of a prompt file/],
      [['--data', data, '--prompts', join(dir, 'missing.json')], /prompts file .*missing\.json cannot be read/],
      [['--data', data, '--set', 'fsam.k=2'], /fsam.k must be odd/],
      [['--data', data, '--frobnicate'], /Unknown option '--frobnicate'/],
    ];
    const runs = await Promise.all(cases.map(([args]) => runCli(args)));
    runs.forEach((run, i) => {
      expect(run.status, cases[i][0].join(' ')).toBe(2);
      expect(run.stderr).toMatch(cases[i][1]);
    });
  });
});

// Keep the fixture writer honest: the masks really are where the squares are.
it('writes masks that match the planted squares, as 8-bit greyscale PNG', async () => {
  const file = join(data, 'synth', 'widget', 'ground_truth', 'scratch', '000_mask.png');
  const meta = await sharp(file).metadata();
  expect([meta.width, meta.height, meta.channels, meta.space]).toEqual([W, H, 1, 'b-w']);
  const mask = new Uint8Array(16);
  await readMaskInto(file, 4, mask); // samples x 12, 36, 60, 84 and y 8, 24, 40, 56: only (36, 24) is inside
  expect([...mask]).toEqual([0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  const full = new Uint8Array(W * H);
  await readMaskInto(file, 64, full.subarray(0, 64 * 64));
  expect(full[25 * 64 + 25]).toBe(1); // samples (38, 25): inside x 30..59, y 20..39
  expect(full[5 * 64 + 5]).toBe(0);
});
