// POST /v1/detect/batch on the tiny model: per-image errors, limits, and the same answers as
// POST /v1/detect for the one-image-at-a-time methods.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { buildApp } from '../../src/app.ts';
import { multipart, startTinyService, type TinyService } from '../support/tiny-service.ts';
import { partPng, pngClaiming, randomBytes } from '../support/test-images.ts';

let svc: TinyService;
let png: Buffer;
let jpeg: Buffer;

beforeAll(async () => {
  svc = await startTinyService({ winclip: '0' });
  png = await partPng();
  jpeg = await sharp(png).flop().jpeg().toBuffer();
});
afterAll(() => svc?.close());

type Part = Parameters<typeof multipart>[0][number];
const file = (value: Buffer, filename: string, type = 'image/png'): Part => ({ name: 'image', value, filename, type });
const fields = (f: Record<string, string>): Part[] => Object.entries(f).map(([name, value]) => ({ name, value }));
const batch = (parts: Part[], app = svc.app) => app.inject({ method: 'POST', url: '/v1/detect/batch', ...multipart(parts) });

describe('POST /v1/detect/batch', () => {
  it('answers every image in upload order; bad ones get their own entries, the others are scored', async () => {
    const truncated = png.subarray(0, Math.floor(png.length / 2));
    const res = await batch([
      file(png, 'a.png'),
      file(Buffer.alloc(0), 'empty.png'),
      file(randomBytes(), 'noise.bin', 'application/octet-stream'),
      file(truncated, 'cut.png'),
      file(jpeg, 'b.jpg', 'image/jpeg'),
      ...fields({ category: 'metal plate', map: 'none' }),
    ]);
    expect(res.statusCode).toBe(200);
    const b = res.json();
    expect(b).toMatchObject({ category: 'metal plate', method: 'dense-frequency', count: 5 });
    expect(b.results.map((r: any) => [r.index, r.filename, r.ok])).toEqual([
      [0, 'a.png', true],
      [1, 'empty.png', false],
      [2, 'noise.bin', false],
      [3, 'cut.png', false],
      [4, 'b.jpg', true],
    ]);
    expect(b.results[1]).toMatchObject({ status: 400, error: 'bad_request' });
    expect(b.results[2]).toMatchObject({ status: 415, error: 'unsupported_media_type' });
    expect(b.results[3]).toMatchObject({ status: 422, error: 'undecodable_image' });
    // Every entry's message names its file, whichever check refused it.
    expect(b.results.filter((r: any) => !r.ok).map((r: any) => r.message)).toEqual([
      'image 2 (empty.png) is empty (0 bytes)',
      expect.stringMatching(/^image 3 \(noise\.bin\) is not a supported image/),
      expect.stringMatching(/^image 4 \(cut\.png\): the png image could not be decoded/),
    ]);
    for (const i of [0, 4]) {
      const r = b.results[i].result;
      expect(r.score).toBeGreaterThanOrEqual(0);
      expect(r.image).toEqual({ width: 96, height: 64 });
      expect(r.detectionId).toEqual(expect.any(String)); // recorded like /v1/detect results
    }
  });

  it('gives the same scores as POST /v1/detect image by image', async () => {
    const images = [png, jpeg, await sharp(png).flip().png().toBuffer()];
    const res = await batch([...images.map((b, i) => file(b, `${i}.img`)), ...fields({ category: 'bottle', map: 'grid' })]);
    expect(res.statusCode).toBe(200);
    const results = res.json().results;
    for (const [i, bytes] of images.entries()) {
      const single = await svc.app.inject({ method: 'POST', url: '/v1/detect', ...multipart([file(bytes, 'x'), ...fields({ category: 'bottle', map: 'grid' })]) });
      expect(single.statusCode).toBe(200);
      const s = single.json();
      expect(results[i].ok).toBe(true);
      expect(Math.abs(results[i].result.score - s.score)).toBeLessThan(1e-6);
      expect(results[i].result.map.values).toEqual(s.map.values);
    }
  });

  it('refuses more than BATCH_MAX images and more than MAX_BATCH_PIXELS pixels with 413', async () => {
    const app = await buildApp({ detector: svc.detector, defaultThreshold: 0.5, maxBodyBytes: 1 << 20, logLevel: 'silent', batchMax: 3, maxBatchPixels: 10_000 });
    try {
      const many = await batch([...[1, 2, 3, 4].map((i) => file(png, `${i}.png`)), ...fields({ category: 'plate' })], app);
      expect(many.statusCode).toBe(413);
      expect(many.json().message).toMatch(/at most 3 images/);
      // Two 96×64 images: 12,288 pixels over a 10,000 limit, refused before decoding.
      const big = await batch([file(png, 'a.png'), file(png, 'b.png'), ...fields({ category: 'plate' })], app);
      expect(big.statusCode).toBe(413);
      expect(big.json().message).toMatch(/12288 pixels.*10000/);
    } finally {
      await app.close();
    }
  });

  it('an image over MAX_PIXELS gets its own 413 entry and does not count towards MAX_BATCH_PIXELS; options in the query string are refused', async () => {
    // 16000 × 16000 (header only) is over MAX_PIXELS and, alone, over MAX_BATCH_PIXELS (200 M): it once refused the whole batch.
    const res = await batch([file(png, 'a.png'), file(pngClaiming(16_000, 16_000), 'huge.png'), ...fields({ category: 'plate', map: 'none' })]);
    expect(res.statusCode).toBe(200);
    const [a, huge] = res.json().results;
    expect(a.ok).toBe(true);
    expect(huge).toMatchObject({ ok: false, status: 413, error: 'image_too_large', message: expect.stringMatching(/16000×16000 pixels; the limit is \d+ pixels per image \(MAX_PIXELS\)/) });
    // The text context is checked as /v1/detect checks it: a phrase CLIP would cut is a 400, not a score.
    const long = await batch([file(png, 'a.png'), ...fields({ category: 'plate', prompts: 'custom', normal: 'a good plate', abnormal: `a plate ${'x '.repeat(95)}` })]);
    expect(long.statusCode).toBe(400);
    expect(long.json().message).toMatch(/tokens; CLIP reads at most 77/);
    const query = await svc.app.inject({ method: 'POST', url: '/v1/detect/batch?threshold=0.9', ...multipart([file(png, 'a.png'), ...fields({ category: 'plate' })]) });
    expect(query.statusCode).toBe(400);
    expect(query.json().message).toMatch(/not in the query string \(got \?threshold\)/);
  });

  it('refuses a request without images, and lists batch among the capabilities', async () => {
    const none = await batch(fields({ category: 'plate' }));
    expect(none.statusCode).toBe(400);
    const models = (await svc.app.inject({ url: '/v1/models' })).json();
    expect(models.capabilities).toContain('batch');
    expect(models.models[0].methods).toContain('musc');
  });
});
