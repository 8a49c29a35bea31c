// dense-frequency's scoreBatch on the tiny model: images of one category go through the image
// graph several per session run (batch dimension > 1), and every image's result is the one
// `score` gives for it alone (to 1e-5), in request order, with branch maps and few-shot memory.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateModel } from '../../../src/dev/random-model.ts';
import { createClipDetector, type ClipDetector } from '../../../src/detection/clip-detector.ts';
import type { DecodedImage } from '../../../src/imaging/decode.ts';
import type { MethodOutcome, MethodRequest } from '../../../src/methods/contract.ts';
import { SESSION_BATCH_IMAGES } from '../../../src/methods/dense-frequency/method.ts';
import { loadSettings } from '../../../src/settings.ts';
import { texturePng } from '../../support/batch-images.ts';
import { maxAbsDiff } from '../../support/musc-batch.ts';

let dir: string;
let detector: ClipDetector;
let images: DecodedImage[];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'df-batch-'));
  const model = join(dir, 'tiny');
  generateModel({ arch: 'tiny', seed: 1, out: model });
  detector = await createClipDetector(loadSettings({}, { model, cacheDir: join(dir, 'cache'), offline: '1', winclip: '0', musc: '0', workers: 2 }));
  // Eleven images of several sizes (so two workers, a full run of 8 and a run of 3), one with a defect.
  const pngs = await Promise.all(Array.from({ length: 11 }, (_, i) => texturePng(i + 1, i === 4)));
  images = await Promise.all(pngs.map(async (png, i) => detector.decode(i % 3 ? png : await sharp(png).resize(96 + 8 * i, 48).png().toBuffer())));
});

afterAll(async () => {
  await detector?.close();
  rmSync(dir, { recursive: true, force: true });
});

const request = (image: DecodedImage, extra: Partial<MethodRequest> = {}): MethodRequest => ({
  image,
  references: [],
  category: 'plate',
  prompts: { mode: 'templated' },
  threshold: 0.45,
  partMaps: false,
  ...extra,
});

function expectSame(batched: MethodOutcome, single: MethodOutcome, what: string): void {
  expect(Math.abs(batched.score - single.score), `${what} score`).toBeLessThan(1e-5);
  expect(Math.abs(batched.pImage - single.pImage), `${what} pImage`).toBeLessThan(1e-5);
  expect(maxAbsDiff(batched.map, single.map), `${what} map`).toBeLessThan(1e-5);
  expect(Object.keys(batched.grid).sort()).toEqual(Object.keys(single.grid).sort());
  for (const k of Object.keys(single.grid)) expect(maxAbsDiff(batched.grid[k]!, single.grid[k]!), `${what} grid.${k}`).toBeLessThan(1e-5);
  expect(Object.keys(batched.branchMaps ?? {}).sort()).toEqual(Object.keys(single.branchMaps ?? {}).sort());
  for (const k of Object.keys(single.branchMaps ?? {})) expect(maxAbsDiff(batched.branchMaps![k], single.branchMaps![k]), `${what} branch ${k}`).toBeLessThan(1e-5);
  expect(batched.regions.length, `${what} regions`).toBe(single.regions.length);
  batched.regions.forEach((r, i) => expect(r.bbox).toEqual(single.regions[i].bbox));
}

describe('dense-frequency scoreBatch', () => {
  it('packs images into session runs of up to SESSION_BATCH_IMAGES and gives each the single-image result', async () => {
    const { runner } = detector.method('dense-frequency');
    const pool = detector.runtime.pool;
    const runs: Array<{ task: string; images: number }> = [];
    const runTask = pool.runTask.bind(pool);
    // Watch (not replace) the real pool: which tasks run, with how many images.
    pool.runTask = ((task: string, payload: { images?: unknown[] }, ...rest: never[]) => {
      runs.push({ task, images: payload.images?.length ?? 1 });
      return runTask(task, payload, ...rest);
    }) as typeof pool.runTask;
    let batched;
    try {
      batched = await runner.scoreBatch!(images.map((image) => request(image)));
    } finally {
      pool.runTask = runTask;
    }
    expect(SESSION_BATCH_IMAGES).toBe(8);
    // (text tower runs for the category's prompts are 'infer' tasks)
    expect(runs.filter((r) => r.task !== 'infer')).toEqual([
      { task: 'score-images', images: 8 },
      { task: 'score-images', images: 3 },
    ]);
    for (const [i, image] of images.entries()) {
      expect(batched[i].map.length).toBe(image.width * image.height);
      expectSame(batched[i], await runner.score(request(image)), `image ${i}`);
    }
  });

  it('keeps branch maps and each request\'s threshold, and does not mix requests that score differently', async () => {
    const { runner } = detector.method('dense-frequency');
    const reqs = images.slice(0, 5).map((image, i) => request(image, { partMaps: i !== 2, threshold: 0.3 + 0.05 * i, category: i === 4 ? 'screw' : 'plate' }));
    const batched = await runner.scoreBatch!(reqs);
    for (const [i, req] of reqs.entries()) expectSame(batched[i], await runner.score(req), `request ${i}`);
    expect(batched[0].branchMaps).toBeDefined();
    expect(batched[2].branchMaps).toBeUndefined();
  });

  it('is the path POST /v1/detect/batch takes: the same scores as /v1/detect', async () => {
    const pngs = await Promise.all([1, 2, 3].map((s) => texturePng(s)));
    const options = { category: 'plate', prompts: { mode: 'templated' as const }, map: 'none' as const, threshold: 0.5, branches: false };
    const batch = await detector.detectBatch(pngs, options);
    for (const [i, png] of pngs.entries()) {
      const item = batch.items[i];
      if (!item.ok) throw item.error;
      expect(Math.abs(item.result.score - (await detector.detect(png, options)).score)).toBeLessThan(1e-5);
    }
  });
});
