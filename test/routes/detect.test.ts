// POST /v1/detect and the health endpoints through real HTTP handling (inject), a real
// detector on the tiny generated model, real sharp decoding.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { buildApp } from '../../src/app.ts';
import { multipart, startTinyService, type TinyService } from '../support/tiny-service.ts';
import { partPng, pngClaiming } from '../support/test-images.ts';

let svc: TinyService;
let png: Buffer;
let jpeg: Buffer;

beforeAll(async () => {
  svc = await startTinyService({ maxQueue: 64 });
  png = await partPng();
  jpeg = await sharp(png).jpeg().toBuffer();
});
afterAll(() => svc?.close());

const detect = (parts: Parameters<typeof multipart>[0], query = '') => {
  const body = multipart(parts);
  return svc.app.inject({ method: 'POST', url: `/v1/detect${query}`, ...body });
};
const image = (buf = png, type = 'image/png') => ({ name: 'image', value: buf, filename: 'part.png', type });

describe('POST /v1/detect (multipart)', () => {
  it('returns score, verdict, regions, summary, a PNG map of the image size, model and timings', async () => {
    const res = await detect([image(), { name: 'category', value: 'metal plate' }]);
    expect(res.statusCode).toBe(200);
    const b = res.json();
    expect(b.category).toBe('metal plate');
    expect(b.score).toBeGreaterThanOrEqual(0);
    expect(b.score).toBeLessThanOrEqual(1);
    expect(b.isAnomalous).toBe(b.score >= b.threshold);
    expect(b.threshold).toBe(0.5);
    expect(Array.isArray(b.regions)).toBe(true);
    expect(b.summary).toMatch(/^metal plate: /);
    expect(b.image).toEqual({ width: 96, height: 64 });
    expect(b.map).toMatchObject({ type: 'png', width: 96, height: 64, encoding: 'base64', mime: 'image/png' });
    const meta = await sharp(Buffer.from(b.map.data, 'base64')).metadata();
    expect([meta.width, meta.height]).toEqual([96, 64]);
    expect(b.model.generatedRandomModel).toBe(true);
    expect(b.model.warning).toMatch(/random weights/);
    for (const k of ['decode', 'encode', 'score', 'render', 'total']) expect(b.timingsMs[k]).toBeGreaterThanOrEqual(0);
  });

  it('accepts JPEG and gives the same kind of answer', async () => {
    const res = await detect([image(jpeg, 'image/jpeg'), { name: 'category', value: 'bottle' }]);
    expect(res.statusCode).toBe(200);
    expect(res.json().image).toEqual({ width: 96, height: 64 });
  });

  it('map=grid returns the low-resolution float grid; map=none returns none', async () => {
    const grid = (await detect([image(), { name: 'category', value: 'pcb' }, { name: 'map', value: 'grid' }])).json();
    expect(grid.map.type).toBe('grid');
    expect(grid.map.width).toBe(8);
    expect(grid.map.values).toHaveLength(64);
    expect(grid.map.values.every((v: number) => v >= 0 && v <= 1)).toBe(true);
    const none = (await detect([image(), { name: 'category', value: 'pcb' }, { name: 'map', value: 'none' }])).json();
    expect(none.map).toBeNull();
  });

  it('map=overlay blends the heatmap over the image at the image size', async () => {
    const b = (await detect([image(), { name: 'category', value: 'pcb' }, { name: 'map', value: 'overlay' }])).json();
    expect(b.map.type).toBe('overlay');
    const meta = await sharp(Buffer.from(b.map.data, 'base64')).metadata();
    expect([meta.width, meta.height]).toEqual([96, 64]);
  });

  it('branches=true adds per-branch scores and maps', async () => {
    const b = (await detect([image(), { name: 'category', value: 'screw' }, { name: 'branches', value: 'true' }, { name: 'map', value: 'grid' }])).json();
    for (const branch of ['full', 'high', 'low']) {
      expect(b.branches[branch].score).toBeGreaterThanOrEqual(0);
      expect(b.branches[branch].map.values).toHaveLength(64);
    }
  });

  it('threshold moves the verdict: 0 flags everything, 1 nothing', async () => {
    const low = (await detect([image(), { name: 'category', value: 'screw' }, { name: 'threshold', value: '0' }])).json();
    expect(low.isAnomalous).toBe(true);
    expect(low.threshold).toBe(0);
    const high = (await detect([image(), { name: 'category', value: 'screw' }, { name: 'threshold', value: '1' }])).json();
    expect(high.isAnomalous).toBe(false);
    expect(high.regions).toEqual([]);
    expect(high.summary).toMatch(/looks normal/);
  });

  it('custom prompts change the text side of the score', async () => {
    const templated = (await detect([image(), { name: 'category', value: 'screw' }, { name: 'map', value: 'none' }])).json();
    const custom = await detect([
      image(),
      { name: 'category', value: 'screw' },
      { name: 'prompts', value: 'custom' },
      { name: 'normal', value: 'a shiny {}' },
      { name: 'normal', value: 'a clean metal part' },
      { name: 'abnormal', value: 'a {} with a scratch' },
      { name: 'map', value: 'none' },
    ]);
    expect(custom.statusCode).toBe(200);
    expect(custom.json().score).not.toBe(templated.score);
  });
});

describe('POST /v1/detect (raw body)', () => {
  it('takes the image bytes with an image/* content type and options in the query', async () => {
    const res = await svc.app.inject({
      method: 'POST',
      url: '/v1/detect?category=metal%20plate&map=grid&threshold=0.3',
      headers: { 'content-type': 'image/png' },
      payload: png,
    });
    expect(res.statusCode).toBe(200);
    const b = res.json();
    expect(b.category).toBe('metal plate');
    expect(b.threshold).toBe(0.3);
    expect(b.map.type).toBe('grid');
  });

  it('needs the category in the query', async () => {
    const res = await svc.app.inject({ method: 'POST', url: '/v1/detect', headers: { 'content-type': 'image/png' }, payload: png });
    expect(res.statusCode).toBe(400);
    expect(res.json().message).toMatch(/category/);
  });
});

describe('POST /v1/detect errors', () => {
  const cases: Array<[string, () => Promise<{ statusCode: number; json: () => any }>, number, RegExp]> = [
    ['missing category', () => detect([image()]), 400, /category/],
    ['empty category', () => detect([image(), { name: 'category', value: '  ' }]), 400, /category/],
    ['a 10 kB category', () => detect([image(), { name: 'category', value: 'x'.repeat(10_000) }]), 400, /category|too long/],
    ['a category with markup', () => detect([image(), { name: 'category', value: '<script>' }]), 400, /category/],
    ['an unknown field', () => detect([image(), { name: 'category', value: 'a' }, { name: 'categroy', value: 'b' }]), 400, /categroy|Unrecognized|unrecognized/],
    ['a bad map value', () => detect([image(), { name: 'category', value: 'a' }, { name: 'map', value: 'jpeg' }]), 400, /map/],
    ['a threshold out of range', () => detect([image(), { name: 'category', value: 'a' }, { name: 'threshold', value: '7' }]), 400, /threshold/],
    ['custom prompts without phrases', () => detect([image(), { name: 'category', value: 'a' }, { name: 'prompts', value: 'custom' }]), 400, /normal/],
    ['phrases without prompts=custom', () => detect([image(), { name: 'category', value: 'a' }, { name: 'abnormal', value: 'x' }]), 400, /custom/],
    ['too many custom phrases', () =>
      detect([
        image(),
        { name: 'category', value: 'a' },
        { name: 'prompts', value: 'custom' },
        { name: 'normal', value: JSON.stringify(Array.from({ length: 1000 }, (_, i) => `p${i}`)) },
        { name: 'abnormal', value: 'x' },
      ]), 400, /phrases/],
    ['no image field', () => detect([{ name: 'category', value: 'a' }]), 400, /image/],
    ['the file under another name', () => detect([{ name: 'photo', value: png, filename: 'p.png' }, { name: 'category', value: 'a' }]), 400, /image/],
    ['two files', () => detect([image(), image(), { name: 'category', value: 'a' }]), 413, /.+/],
    ['a zero-byte file', () => detect([image(Buffer.alloc(0)), { name: 'category', value: 'a' }]), 400, /empty/],
    ['random bytes', () => detect([image(Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7919) % 251))), { name: 'category', value: 'a' }]), 415, /image/],
    ['a truncated PNG', () => detect([image(png.subarray(0, Math.floor(png.length / 2))), { name: 'category', value: 'a' }]), 422, /decoded|truncated|damaged/],
    ['a truncated JPEG', () => detect([image(jpeg.subarray(0, Math.floor(jpeg.length / 2)), 'image/jpeg'), { name: 'category', value: 'a' }]), 422, /decoded|truncated|damaged/],
    ['a PNG claiming 100000 × 100000 pixels', () => detect([image(pngClaiming(100_000, 100_000)), { name: 'category', value: 'a' }]), 413, /pixels/],
    ['a JSON body', () => svc.app.inject({ method: 'POST', url: '/v1/detect?category=a', payload: { image: 'x' } }), 415, /multipart|image/],
    // 100 Devanagari letters are some 300 tokens: the templated prompts were cut to the template alone.
    ['a category too long for the prompt templates', () => detect([image(), { name: 'category', value: 'क'.repeat(100) }]), 400, /is \d+ tokens; inside the prompt templates CLIP reads at most \d+ of them \(77 in all\)/],
    // It was answered at the default threshold, the query ignored.
    ['multipart with options in the query string', () => detect([image(), { name: 'category', value: 'a' }], '?threshold=0.99'), 400, /not in the query string \(got \?threshold\)/],
  ];

  it.each(cases)('%s → JSON error', async (_name, send, status, message) => {
    const res = await send();
    expect(res.statusCode).toBe(status);
    const b = res.json();
    expect(typeof b.error).toBe('string');
    expect(b.message).toMatch(message);
  });

  it('a body over the size limit gets 413', async () => {
    const small = await buildApp({ detector: svc.detector, defaultThreshold: 0.5, maxBodyBytes: 10_000, logLevel: 'silent' });
    const big = Buffer.alloc(20_000, 1);
    const raw = await small.inject({ method: 'POST', url: '/v1/detect?category=a', headers: { 'content-type': 'image/png' }, payload: big });
    expect(raw.statusCode).toBe(413);
    expect(raw.json()).toMatchObject({ error: 'payload_too_large', message: 'the request body is larger than 10000 bytes (9.8 KiB), MAX_BODY_BYTES: send a smaller image' });
    const form = await small.inject({ method: 'POST', url: '/v1/detect', ...multipart([image(big), { name: 'category', value: 'a' }]) });
    expect(form.statusCode).toBe(413);
    expect(form.json().message).toMatch(/larger than 10000 bytes \(9.8 KiB\), MAX_BODY_BYTES/);
    await small.close();
  });

  it('keeps serving after every bad request', async () => {
    expect((await svc.app.inject({ url: '/healthz' })).statusCode).toBe(200);
    expect((await detect([image(), { name: 'category', value: 'bottle' }])).statusCode).toBe(200);
  });
});

describe('health and model endpoints', () => {
  it('GET /healthz and /readyz', async () => {
    expect((await svc.app.inject({ url: '/healthz' })).json()).toEqual({ status: 'ok' });
    expect((await svc.app.inject({ url: '/readyz' })).json()).toEqual({ status: 'ready' });
  });

  it('GET /v1/models describes the loaded checkpoint', async () => {
    const [m] = (await svc.app.inject({ url: '/v1/models' })).json().models;
    expect(m).toMatchObject({ generatedRandomModel: true, inputSize: 64, grid: 8, denseLayers: [2, 3, 4], promptModes: ['templated', 'custom'] });
  });

  it('unknown routes get a JSON 404', async () => {
    const res = await svc.app.inject({ url: '/nope' });
    expect(res.statusCode).toBe(404);
    expect(res.json().error).toBe('not_found');
  });
});

describe('concurrency', () => {
  it('50 concurrent detections all succeed while the event loop stays free', async () => {
    const address = await svc.app.listen({ host: '127.0.0.1', port: 0 });
    const form = multipart([image(), { name: 'category', value: 'metal plate' }]);
    let lastDetectionAt = 0;
    const detections = Array.from({ length: 50 }, () =>
      fetch(`${address}/v1/detect`, { method: 'POST', headers: form.headers, body: form.payload }).then(async (r) => {
        lastDetectionAt = performance.now();
        return r.status;
      }),
    );
    await new Promise((r) => setTimeout(r, 50));
    const health = await fetch(`${address}/healthz`);
    const healthAt = performance.now();
    expect(health.status).toBe(200);
    const statuses = await Promise.all(detections);
    expect(statuses.every((s) => s === 200)).toBe(true);
    expect(healthAt).toBeLessThan(lastDetectionAt);
  });
});
