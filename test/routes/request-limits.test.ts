// Request bounds and exact answers over a real listening server: the pixels one request may
// decode (image and references together, MAX_REQUEST_PIXELS), plain-decimal thresholds,
// repeated parameters, content types with parameters or none at all.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.ts';
import { multipart, startTinyService, type TinyService } from '../support/tiny-service.ts';
import { partPng } from '../support/test-images.ts';

let svc: TinyService;
let app: FastifyInstance;
let base: string;
let png: Buffer; // 96×64 = 6144 pixels

beforeAll(async () => {
  // Room for the image and one reference, not two.
  svc = await startTinyService({ maxRequestPixels: 15_000 });
  app = await buildApp({ detector: svc.detector, defaultThreshold: 0.5, maxBodyBytes: 1 << 20, logLevel: 'silent' });
  base = await app.listen({ host: '127.0.0.1', port: 0 });
  png = await partPng();
});
afterAll(async () => {
  await app?.close();
  await svc?.close();
});

type Part = Parameters<typeof multipart>[0][number];
const file = (name: string): Part => ({ name, value: png, filename: 'part.png', type: 'image/png' });

async function send(query: string, body: Buffer, headers: Record<string, string>) {
  const res = await fetch(`${base}/v1/detect${query}`, { method: 'POST', headers, body: new Uint8Array(body) });
  return { status: res.status, body: await res.json() };
}
const form = (parts: Part[]) => {
  const m = multipart(parts);
  return send('', m.payload, m.headers);
};
const raw = (query: string, type = 'image/png') => send(query, png, { 'content-type': type });

describe('MAX_REQUEST_PIXELS', () => {
  it('the image and its references together over the limit: 413 naming the total and the limit', async () => {
    const fields: Part[] = [{ name: 'category', value: 'bottle' }, { name: 'method', value: 'winclip' }, { name: 'map', value: 'none' }];
    const within = await form([file('image'), file('reference'), ...fields]);
    expect(within.status).toBe(200);
    const over = await form([file('image'), file('reference'), file('reference'), ...fields]);
    expect(over.status).toBe(413);
    expect(over.body).toEqual({ error: 'image_too_large', message: expect.stringMatching(/2 reference images hold 18432 pixels together; the limit per request is 15000 pixels/) });
  });
});

describe('threshold', () => {
  it.each(['', '0x1', '1e0', '.5e1', 'Infinity', ' 0.5', '1.5', '-0', '0.5.1'])('threshold=%j is refused with 400', async (value) => {
    const a = await raw(`?category=bottle&map=none&threshold=${encodeURIComponent(value)}`);
    expect(a.status).toBe(400);
    // The field by name too, for a client that acts on it without parsing the message.
    expect(a.body).toEqual({ error: 'bad_request', message: expect.stringMatching(/threshold/), fields: ['threshold'] });
  });

  it.each([['0', 0], ['1', 1], ['0.25', 0.25], ['.75', 0.75], ['1.000', 1]])('threshold=%s is taken as %d', async (value, expected) => {
    const a = await raw(`?category=bottle&map=none&threshold=${value}`);
    expect(a.status).toBe(200);
    expect(a.body.threshold).toBe(expected);
  });
});

describe('parameters and content types', () => {
  it('a repeated category says so', async () => {
    const a = await raw('?category=bottle&category=screw&map=none');
    expect(a.status).toBe(400);
    expect(a.body.message).toMatch(/category is given twice/);
  });

  it('image/png; charset=binary is a PNG', async () => {
    expect((await raw('?category=bottle&map=none', 'image/png; charset=binary')).status).toBe(200);
  });

  it('no content type: 415 saying what to send', async () => {
    const res = await fetch(`${base}/v1/detect?category=bottle`, { method: 'POST', body: new Uint8Array(png), headers: { 'content-type': '' } });
    expect(res.status).toBe(415);
    expect(await res.json()).toEqual({ error: 'unsupported_media_type', message: expect.stringMatching(/multipart\/form-data.*image\/png/) });
  });
});

describe('custom prompts', () => {
  it('a phrase longer than the text context is refused with its token count', async () => {
    const context = svc.detector.runtime.tokenizer.contextLength;
    const long = Array.from({ length: 99 }, (_, i) => 'abcdefghijklmnopqrstuvwxyz'[i % 26]).join(' ');
    const q = (abnormal: string) => `?category=bottle&map=none&prompts=custom&normal=${encodeURIComponent('a good bottle')}&abnormal=${encodeURIComponent(abnormal)}`;
    const a = await raw(q(long));
    expect(a.status).toBe(400);
    expect(a.body.message).toMatch(new RegExp(`the phrase "a b c.*" is \\d+ tokens; CLIP reads at most ${context}`));
    const tokens = Number(/is (\d+) tokens/.exec(a.body.message)![1]);
    expect(tokens).toBeGreaterThan(context);
    expect((await raw(q('a broken bottle'))).status).toBe(200);
  });
});
