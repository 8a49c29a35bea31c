// `npm run eval -- --set method=musc`: the paper's protocol on a tiny MVTec-layout folder made
// here. Every test image of a category is one batch through the detector's batch path, so each
// image's score is the one POST /v1/detect/batch gives for the same set of images; the usual
// metrics follow (pixel ones from the maps), and the overlays come from the batch's own maps.
// The same folder serves the test of an interrupted run (Ctrl-C: the report written at once).
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateModel } from '../../src/dev/random-model.ts';
import { createClipDetector } from '../../src/detection/clip-detector.ts';
import { planEval, runEval } from '../../src/eval/run.ts';
import { loadSettings } from '../../src/settings.ts';
import { lcg } from '../support/lcg.ts';

let dir: string;
let data: string;
let model: string;

const SIZE = 64;
type Square = { x: number; y: number; s: number; rgb: [number, number, number] };
const DEFECTS: Record<string, Square> = {
  '000': { x: 8, y: 8, s: 16, rgb: [255, 255, 255] },
  '001': { x: 36, y: 32, s: 16, rgb: [200, 20, 20] },
};

/** Stripes with seeded noise, as the MuSc HTTP tests use, and an optional coloured square. */
function texture(seed: number, square?: Square): Buffer {
  const rand = lcg(seed);
  const rgb = Buffer.alloc(SIZE * SIZE * 3);
  for (let y = 0; y < SIZE; y++) {
    for (let x = 0; x < SIZE; x++) {
      const v = ((x + y) % 8 < 4 ? 90 : 150) + Math.round((rand() - 0.5) * 20);
      const i = (y * SIZE + x) * 3;
      const inside = square && x >= square.x && x < square.x + square.s && y >= square.y && y < square.y + square.s;
      rgb.set(inside ? square.rgb : [v, v, Math.round(v * 0.8)], i);
    }
  }
  return rgb;
}

async function write(file: string, raw: Buffer, channels: 1 | 3): Promise<void> {
  mkdirSync(dirname(file), { recursive: true });
  const img = sharp(raw, { raw: { width: SIZE, height: SIZE, channels } });
  await (channels === 1 ? img.toColourspace('b-w') : img).png().toFile(file);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'eval-musc-'));
  data = join(dir, 'data');
  model = join(dir, 'tiny');
  const plate = join(data, 'plate');
  for (let i = 0; i < 6; i++) await write(join(plate, 'test', 'good', `00${i}.png`), texture(i + 1), 3);
  for (const [stem, sq] of Object.entries(DEFECTS)) {
    await write(join(plate, 'test', 'spot', `${stem}.png`), texture(20 + Number(stem), sq), 3);
    const mask = Buffer.alloc(SIZE * SIZE);
    for (let y = sq.y; y < sq.y + sq.s; y++) mask.fill(255, y * SIZE + sq.x, y * SIZE + sq.x + sq.s);
    await write(join(plate, 'ground_truth', 'spot', `${stem}_mask.png`), mask, 1);
  }
  generateModel({ arch: 'tiny', seed: 1, out: model });
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** An evaluation of `root` on the tiny model, templated prompts, 64 px, the sweep `set`. */
const tinyPlan = (root: string, out: string, set: string[], overlaysPerKind = 0) =>
  planEval({
    data: root,
    model,
    out,
    set,
    prompts: 'templated',
    promptChoice: { mode: 'templated' },
    pixelSize: 64,
    overlaysPerKind,
    command: 'test',
    env: { MODEL_CACHE_DIR: join(dir, 'cache'), HF_HUB_OFFLINE: '1', WINCLIP: '0' },
  });

describe('npm run eval -- --set method=musc', () => {
  it('scores each category as one batch through the detector batch path and reports the metrics', async () => {
    const out = join(dir, 'out');
    const env = { MODEL_CACHE_DIR: join(dir, 'cache'), HF_HUB_OFFLINE: '1', WINCLIP: '0' };
    const plan = tinyPlan(data, out, ['method=musc'], 1);
    const lines: string[] = [];
    const ticks: number[] = [];
    await runEval(plan, { log: (m) => lines.push(m), progress: () => ({ status() {}, tick: (n = 1) => void ticks.push(n), done() {} }) });
    // 8 images + 3 overlays (1 detected, 1 missed, 1 false alarm), all counted.
    expect(ticks.reduce((a, b) => a + b, 0)).toBe(11);

    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    const [config] = report.configurations;
    expect(config.label).toBe('method=musc');
    const [plate] = config.categories;
    expect(plate).toMatchObject({ id: 'plate', images: 8, good: 6, defective: 2, pixelImages: 8 });
    for (const key of ['imageAuroc', 'imageAp', 'pixelAuroc', 'pixelAp', 'aupro']) {
      expect(plate.metrics[key], key).toBeGreaterThanOrEqual(0);
      expect(plate.metrics[key], key).toBeLessThanOrEqual(1);
    }
    // A square no other image has is what MuSc finds, even with random weights.
    expect(plate.metrics.imageAuroc).toBe(1);
    expect(plate.overlays.map((o: { kind: string }) => o.kind)).toEqual(['detected', 'missed', 'false-alarm']);
    for (const o of plate.overlays) expect(existsSync(join(out, o.file))).toBe(true);

    // The same 8 images sent as one batch to the detector give the same scores (bit for bit).
    const csv = readFileSync(join(out, config.files.scores), 'utf8').trim().split('\n').slice(1);
    const fromEval = new Map(csv.map((row) => row.split(',')).map((c) => [c[2], Number(c[5])]));
    const settings = loadSettings({}, { model, cacheDir: env.MODEL_CACHE_DIR, offline: '1', winclip: '0' });
    const detector = await createClipDetector(settings);
    try {
      const files = [...fromEval.keys()];
      const uploads = await Promise.all(files.map((f) => readFile(join(data, 'plate', f))));
      const batch = await detector.detectBatch(uploads, { category: 'plate', prompts: { mode: 'templated' }, map: 'none', threshold: 0.5, branches: false, method: 'musc' });
      batch.items.forEach((item, i) => {
        if (!item.ok) throw item.error;
        expect(item.result.score, files[i]).toBeCloseTo(fromEval.get(files[i])!, 7);
      });
    } finally {
      await detector.close();
    }
  });

});

describe('npm run eval interrupted', () => {
  it('Ctrl-C: the report is written at once and says it was interrupted and what is missing', async () => {
    const out = join(dir, 'out-interrupted');
    const plan = tinyPlan(data, out, ['cutoff=0.15,0.25']);
    const interrupted = new AbortController();
    let seen = '';
    // The first scored image stands for the Ctrl-C: what the report says right then is what an interrupted run leaves.
    const progress = () => ({ status() {}, done() {}, tick: () => { if (!interrupted.signal.aborted) { interrupted.abort(); seen = readFileSync(join(out, 'report.md'), 'utf8'); } } });
    await runEval(plan, { log: () => {}, progress, interrupted: interrupted.signal });
    expect(seen).toMatch(/\*\*Incomplete run: it was interrupted \(Ctrl-C\) before it ended; c1, c2 are missing below\.\*\*/);
  });

});

describe('npm run eval -- --set method=musc, too few images', () => {
  it('refuses a category below the minimum with MuSc\'s own message', async () => {
    const small = join(dir, 'small');
    for (let i = 0; i < 3; i++) await write(join(small, 'bolt', 'test', 'good', `${i}.png`), texture(40 + i), 3);
    await write(join(small, 'bolt', 'test', 'bent', '0.png'), texture(50, DEFECTS['000']), 3);
    const plan = tinyPlan(small, join(dir, 'out-small'), ['method=musc']);
    await expect(runEval(plan, { log: () => {}, progress: () => ({ status() {}, tick() {}, done() {} }) })).rejects.toThrow(/at least 5 images; got 4/);
  });
});
