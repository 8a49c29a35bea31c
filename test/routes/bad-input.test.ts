// The bad-input suite through a real listening server: every malformed, hostile or oversized
// upload gets its documented 4xx JSON error, nothing is logged at error level, no image bytes
// reach the logs, and the server keeps answering with stable memory.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.ts';
import { errorSchema } from '../../src/routes/response-schemas.ts';
import { multipart, startTinyService, type TinyService } from '../support/tiny-service.ts';
import { LEVEL, LogCapture } from '../support/log-capture.ts';
import { retainedBytes } from '../support/memory.ts';
import { partPng, pngClaiming, randomBytes, withTextChunk } from '../support/test-images.ts';

const MAX_BODY = 1024 * 1024;
const MARKER = 'IMAGE-BYTES-MARKER-5f3a';

let svc: TinyService;
let app: FastifyInstance;
let base: string;
const logs = new LogCapture();
let png: Buffer;
let jpeg: Buffer;

beforeAll(async () => {
  svc = await startTinyService();
  app = await buildApp({ detector: svc.detector, defaultThreshold: 0.5, maxBodyBytes: MAX_BODY, logLevel: 'info', logStream: logs, requestTimeoutMs: 30_000 });
  base = await app.listen({ host: '127.0.0.1', port: 0 });
  png = withTextChunk(await partPng(), MARKER);
  jpeg = await sharp(png).jpeg().toBuffer();
});
afterAll(async () => {
  await app?.close();
  await svc?.close();
});

interface Answer {
  status: number;
  contentType: string | null;
  body: any;
}

async function post(payload: Buffer | string, headers: Record<string, string>, query = ''): Promise<Answer> {
  const body = typeof payload === 'string' ? payload : new Uint8Array(payload);
  const res = await fetch(`${base}/v1/detect${query}`, { method: 'POST', headers, body });
  const text = await res.text();
  return { status: res.status, contentType: res.headers.get('content-type'), body: JSON.parse(text) };
}

type Part = Parameters<typeof multipart>[0][number];
const form = (parts: Part[]) => {
  const m = multipart(parts);
  return post(m.payload, m.headers);
};
const raw = (bytes: Buffer, query = '?category=bottle', type = 'image/png') => post(bytes, { 'content-type': type }, query);
const image = (value: Buffer, name = 'image'): Part => ({ name, value, filename: 'part.png', type: 'image/png' });
const category = (value: string | Buffer = 'bottle'): Part => ({ name: 'category', value });

const cases: Array<[string, () => Promise<Answer>, number, string, RegExp]> = [
  ['random bytes', () => form([image(randomBytes()), category()]), 415, 'unsupported_media_type', /not a supported image/],
  ['random bytes as a raw body', () => raw(randomBytes()), 415, 'unsupported_media_type', /not a supported image/],
  ['a truncated PNG', () => form([image(png.subarray(0, Math.floor(png.length * 0.6))), category()]), 422, 'undecodable_image', /damaged|truncated/],
  ['a truncated JPEG', () => form([image(jpeg.subarray(0, Math.floor(jpeg.length / 2))), category()]), 422, 'undecodable_image', /damaged|truncated/],
  ['a PNG declaring 100,000 × 100,000 pixels', () => form([image(pngClaiming(100_000, 100_000)), category()]), 413, 'image_too_large', /100000×100000.*limit/],
  ['a PNG 20,000 pixels wide (side limit)', () => raw(pngClaiming(20_000, 8)), 413, 'image_too_large', /each side is limited to 16384/],
  ['a zero-byte file', () => form([image(Buffer.alloc(0)), category()]), 400, 'bad_request', /empty/],
  ['a zero-byte raw body', () => raw(Buffer.alloc(0)), 400, 'bad_request', /empty/],
  ['a misspelt field name', () => form([image(png), category(), { name: 'categroy', value: 'x' }]), 400, 'bad_request', /categroy/],
  ['the file under another field name', () => form([image(png, 'file'), category()]), 400, 'bad_request', /"file".*"image"/],
  ['no file at all', () => form([category()]), 400, 'bad_request', /missing file field "image"/],
  ['no category', () => form([image(png)]), 400, 'bad_request', /category is required/],
  ['a 10 kB category', () => form([image(png), category('x'.repeat(10_000))]), 400, 'bad_request', /category is longer than 100/],
  ['non-UTF-8 bytes in a field', () => form([image(png), category(Buffer.from([0x62, 0xff, 0xfe, 0x6f]))]), 400, 'bad_request', /category may hold/],
  ['non-UTF-8 bytes in the query', () => raw(png, '?category=b%FF%FEo'), 400, 'bad_request', /category may hold/],
  [
    '1,000 custom prompts as repeated fields',
    () =>
      form([
        image(png),
        category(),
        { name: 'prompts', value: 'custom' },
        ...Array.from({ length: 1000 }, (_, i) => ({ name: 'normal', value: `a clean part ${i}` })),
        { name: 'abnormal', value: 'a broken {}' },
      ]),
    413,
    'payload_too_large',
    /fields limit/,
  ],
  [
    '1,000 custom prompts as one JSON array',
    () =>
      form([
        image(png),
        category(),
        { name: 'prompts', value: 'custom' },
        { name: 'normal', value: JSON.stringify(Array.from({ length: 1000 }, (_, i) => `p${i}`)) },
        { name: 'abnormal', value: 'x' },
      ]),
    400,
    'bad_request',
    /at most 32 phrases/,
  ],
  [
    '1,000 custom prompts in the query',
    () => raw(png, `?category=a&prompts=custom&abnormal=x&${Array.from({ length: 1000 }, (_, i) => `normal=p${i}`).join('&')}`),
    400,
    'bad_request',
    /at most 32 phrases/,
  ],
  ['a prompt over 200 characters', () => form([image(png), category(), { name: 'prompts', value: 'custom' }, { name: 'normal', value: 'n'.repeat(201) }, { name: 'abnormal', value: 'x' }]), 400, 'bad_request', /longer than 200/],
  ['a multipart body with 20 files', () => form([category(), ...Array.from({ length: 20 }, () => image(png))]), 413, 'payload_too_large', /one image per request/],
  [
    'a multipart body cut short',
    () => {
      const m = multipart([image(png), category()]);
      return post(m.payload.subarray(0, 300), m.headers);
    },
    400,
    'bad_request',
    /multipart body could not be read/,
  ],
  ['a raw body over MAX_BODY_BYTES', () => raw(Buffer.alloc(MAX_BODY + 1, 1)), 413, 'payload_too_large', /.+/],
  ['a multipart file over MAX_BODY_BYTES', () => form([category(), image(Buffer.concat([png, Buffer.alloc(MAX_BODY)]))]), 413, 'payload_too_large', /.+/],
  ['a JSON body', () => post(JSON.stringify({ image: 'x', category: 'a' }), { 'content-type': 'application/json' }), 415, 'unsupported_media_type', /multipart/],
  ['invalid JSON', () => post('{"image":', { 'content-type': 'application/json' }), 400, 'bad_request', /JSON/],
  ['a text body', () => post('hello', { 'content-type': 'text/plain' }), 415, 'unsupported_media_type', /.+/],
  ['a threshold that is no number', () => raw(png, '?category=a&threshold=high'), 400, 'bad_request', /threshold/],
  // The router's own refusals, once answered in Fastify's shape ({code: FST_ERR_…, statusCode}, a 414).
  ['a malformed %-escape in the path', () => send('GET', '/v1/maps/%FF'), 400, 'bad_request', /malformed %-escape/],
  ['a path segment of 3000 characters', () => send('GET', `/v1/maps/${'a'.repeat(3000)}`), 400, 'bad_request', /path segment is too long/],
  ['a raw image sent to the batch route', () => send('POST', '/v1/detect/batch?category=a', png, { 'content-type': 'image/png' }), 415, 'unsupported_media_type', /one or more file fields "image"$/],
];

async function send(method: string, path: string, payload?: Buffer, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await fetch(`${base}${path}`, { method, headers, body: payload ? new Uint8Array(payload) : undefined });
  const text = await res.text();
  return { status: res.status, contentType: res.headers.get('content-type'), body: JSON.parse(text) };
}

async function runSuite(): Promise<void> {
  for (const [name, send, status, error, message] of cases) {
    const res = await send();
    expect({ name, status: res.status, error: res.body.error }).toEqual({ name, status, error });
    expect(res.contentType).toMatch(/^application\/json/);
    expect(errorSchema.parse(res.body).message).toMatch(message);
  }
}

describe('bad input through real HTTP', () => {
  it.each(cases)('%s → its JSON error', async (name, send, status, error, message) => {
    const res = await send();
    expect(res.status).toBe(status);
    expect(res.contentType).toMatch(/^application\/json/);
    expect(res.body.error).toBe(error);
    expect(errorSchema.parse(res.body).message).toMatch(message);
  });

  it('logs every rejection at info with its request id; nothing at error level, no image bytes', () => {
    const lines = logs.lines;
    expect(lines.length).toBeGreaterThan(cases.length);
    expect(logs.atOrAbove(LEVEL.error)).toEqual([]);
    const rejections = lines.filter((l) => l.msg === 'request rejected');
    expect(rejections.length).toBe(cases.length);
    for (const l of rejections) {
      expect(l.level).toBe(LEVEL.info);
      expect(l.reqId).toMatch(/^[0-9a-f-]{36}$/);
    }
    expect(logs.raw.some((l) => l.includes(MARKER))).toBe(false);
    expect(Math.max(...logs.raw.map((l) => l.length))).toBeLessThan(2000);
  });

  it('keeps serving with stable memory after the suite, repeated', async () => {
    await runSuite();
    const before = retainedBytes();
    for (let round = 0; round < 3; round++) await runSuite();
    const growth = retainedBytes() - before;
    expect(growth).toBeLessThan(16 * 1024 * 1024);
    expect(logs.atOrAbove(LEVEL.error)).toEqual([]);
    const health = await fetch(`${base}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    const ok = await form([image(png), category('metal plate')]);
    expect(ok.status).toBe(200);
    expect(ok.body.category).toBe('metal plate');
  });
});
