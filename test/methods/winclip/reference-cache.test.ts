// WinCLIP+ reference windows encoded once per reference image (method.ts): the second query
// with the same references, request-sent or stored in a category, runs the window graph on the
// query only, and gives the same numbers as the first query and as the joint batch of before.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { decodeImage, type DecodedImage } from '../../../src/imaging/decode.ts';
import { WinclipRunner } from '../../../src/methods/winclip/method.ts';
import { WINCLIP_TASK_NAME, type WinclipOutcome, type WinclipPayload } from '../../../src/methods/winclip/worker-task.ts';
import { WINCLIP_TEMPERATURE } from '../../../src/methods/winclip/scoring.ts';
import { DEFAULT_WINDOW_SIZES } from '../../../src/methods/winclip/window-graph.ts';
import { rgbForWorker } from '../../../src/methods/worker-image.ts';
import { multipart, startTinyService, type TinyService } from '../../support/tiny-service.ts';

let svc: TinyService;
let runner: WinclipRunner;
let query: DecodedImage;
let normals: DecodedImage[];
let pngs: Buffer[];

async function png(width: number, height: number, background: string, spot?: { left: number; top: number; color: string }): Promise<Buffer> {
  let img = sharp({ create: { width, height, channels: 3, background } });
  if (spot) img = img.composite([{ input: { create: { width: 12, height: 10, channels: 3, background: spot.color } }, left: spot.left, top: spot.top }]);
  return img.png().toBuffer();
}

beforeAll(async () => {
  svc = await startTinyService({ referenceLimit: '8' });
  const r = svc.detector.method('winclip').runner;
  if (!(r instanceof WinclipRunner)) throw new Error('the winclip runner is not a WinclipRunner');
  runner = r;
  pngs = [await png(96, 72, '#707070', { left: 50, top: 20, color: '#d02020' }), await png(80, 80, '#727272'), await png(64, 96, '#6a6e70', { left: 5, top: 60, color: '#757575' }), await png(70, 70, '#6c6c6c')];
  [query, ...normals] = await Promise.all(pngs.map((b) => decodeImage(b)));
});
afterAll(() => svc?.close());

const score = (image: DecodedImage, references: DecodedImage[], category = 'pcb') =>
  svc.detector.scoreDecoded({ image, category, prompts: { mode: 'templated' }, threshold: 0.5, method: 'winclip', references }).then((r) => r.outcome);

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('WinCLIP reference cache', () => {
  it('request references: encoded once, the second query runs the graph on the query only, same numbers', async () => {
    const before = { ...runner.referenceEncoding };
    const first = await score(query, normals);
    expect(runner.referenceEncoding.runs - before.runs).toBe(1);
    expect(runner.referenceEncoding.images - before.images).toBe(3);
    const second = await score(query, normals);
    expect(runner.referenceEncoding.runs - before.runs).toBe(1);
    expect(second.score).toBe(first.score);
    expect(Buffer.from(second.map.buffer).equals(Buffer.from(first.map.buffer))).toBe(true);
    // A new reference among known ones: only it is encoded.
    const extra = await decodeImage(pngs[0]);
    await score(query, [...normals, extra]);
    expect(runner.referenceEncoding.runs - before.runs).toBe(2);
    expect(runner.referenceEncoding.images - before.images).toBe(4);
  });

  it('agrees with the uncached path (query and references in one window-graph batch) to 1e-5', async () => {
    const cached = await score(query, normals);
    const r = svc.detector.runtime;
    const text = await runner.classEmbeddings('pcb', { mode: 'templated' });
    const joint: WinclipPayload = {
      images: [query, ...normals].map(rgbForWorker),
      preprocess: { ...r.preprocess, size: (r.extraGraphs.winclip.spec.options as { imageSize: number }).imageSize },
      grid: r.grid,
      dim: r.dim,
      width: r.config.vision.width,
      windowSizes: [...DEFAULT_WINDOW_SIZES],
      text,
      temperature: WINCLIP_TEMPERATURE,
      threshold: 0.5,
    };
    const uncached = await r.pool.runTask<WinclipOutcome>(WINCLIP_TASK_NAME, joint, []);
    expect(Math.abs(cached.score - uncached.score)).toBeLessThan(1e-5);
    expect(maxAbsDiff(cached.grid.fused, uncached.grid.fused)).toBeLessThan(1e-5);
    // And the few-shot part matters here (not a zero-shot result compared with itself).
    const zeroShot = await score(query, []);
    expect(Math.abs(zeroShot.score - cached.score)).toBeGreaterThan(1e-4);
  });

  it('stored references: the second detection for the category does not run the window graph on them', async () => {
    const json = (method: string, url: string, payload?: unknown) => svc.app.inject({ method: method as 'GET', url, payload: payload as object });
    expect((await json('PUT', '/v1/categories/cache-tile', { name: 'tile', defaultMethod: 'winclip' })).statusCode).toBe(201);
    const upload = multipart(pngs.slice(1).map((b, i) => ({ name: 'image', value: b, filename: `good-${i}.png`, type: 'image/png' })));
    expect((await svc.app.inject({ method: 'POST', url: '/v1/categories/cache-tile/references', ...upload })).statusCode).toBeLessThan(300);
    const detect = () =>
      svc.app.inject({ method: 'POST', url: '/v1/detect', ...multipart([{ name: 'image', value: pngs[0], filename: 'q.png', type: 'image/png' }, { name: 'category', value: 'cache-tile' }, { name: 'map', value: 'none' }]) });
    const before = { ...runner.referenceEncoding };
    const first = await detect();
    expect(first.statusCode).toBe(200);
    expect(first.json().categoryResource).toMatchObject({ references: 3 });
    expect(runner.referenceEncoding.images - before.images).toBe(3);
    const second = await detect();
    expect(runner.referenceEncoding.runs - before.runs).toBe(1);
    expect(runner.referenceEncoding.images - before.images).toBe(3);
    expect(second.json().score).toBe(first.json().score);
    // A reference change is a new category version: its images are encoded again.
    const more = multipart([{ name: 'image', value: pngs[0], filename: 'more.png', type: 'image/png' }]);
    await svc.app.inject({ method: 'POST', url: '/v1/categories/cache-tile/references', ...more });
    await detect();
    expect(runner.referenceEncoding.runs - before.runs).toBe(2);
  });
});
