// POST /v1/detect with method=winclip through real HTTP handling on the tiny model: zero-shot,
// few-shot with `reference` file fields, the raw-body form, and the requests refused with 400.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { multipart, startTinyService, type TinyService } from '../../support/tiny-service.ts';

let svc: TinyService;
let png: Buffer;
let normal: Buffer;

beforeAll(async () => {
  svc = await startTinyService();
  png = await sharp({ create: { width: 96, height: 64, channels: 3, background: '#6d6d6d' } })
    .composite([{ input: { create: { width: 10, height: 10, channels: 3, background: '#ff0000' } }, left: 40, top: 20 }])
    .png()
    .toBuffer();
  normal = await sharp({ create: { width: 96, height: 64, channels: 3, background: '#6d6d6d' } }).png().toBuffer();
});
afterAll(() => svc?.close());

type Part = Parameters<typeof multipart>[0][number];
const detect = (parts: Part[], query = '') => svc.app.inject({ method: 'POST', url: `/v1/detect${query}`, ...multipart(parts) });
const image = (buf = png): Part => ({ name: 'image', value: buf, filename: 'part.png', type: 'image/png' });
const reference = (buf = normal): Part => ({ name: 'reference', value: buf, filename: 'good.png', type: 'image/png' });
const field = (name: string, value: string): Part => ({ name, value });

describe('POST /v1/detect method=winclip', () => {
  it('zero-shot: the usual response, with method, a grid of the patch grid and a map of the image size', async () => {
    const res = await detect([image(), field('category', 'metal plate'), field('method', 'winclip'), field('map', 'grid')]);
    expect(res.statusCode).toBe(200);
    const b = res.json();
    expect(b.method).toBe('winclip');
    expect(b.score).toBeGreaterThanOrEqual(0);
    expect(b.score).toBeLessThanOrEqual(1);
    expect(b.isAnomalous).toBe(b.score >= b.threshold);
    expect(b.map).toMatchObject({ type: 'grid', width: 8, height: 8 });
    expect(b.map.values).toHaveLength(64);
    expect(b.branches).toBeUndefined();
    expect(b.summary).toMatch(/^metal plate: /);
    const png = (await detect([image(), field('category', 'metal plate'), field('method', 'winclip')])).json();
    expect(png.map).toMatchObject({ type: 'png', width: 96, height: 64 });
  });

  it('the default method stays dense-frequency and says so; `ours`, its old name, is an alias', async () => {
    const b = (await detect([image(), field('category', 'metal plate'), field('map', 'none')])).json();
    expect(b.method).toBe('dense-frequency');
    const alias = (await detect([image(), field('category', 'metal plate'), field('map', 'none'), field('method', 'ours')])).json();
    expect(alias.method).toBe('dense-frequency');
    expect(alias.score).toBe(b.score);
  });

  it('few-shot with reference images changes the score; repeated requests give the same numbers', async () => {
    const zero = (await detect([image(), field('category', 'pcb'), field('method', 'winclip'), field('map', 'none')])).json();
    const parts = [image(), reference(), reference(png), field('category', 'pcb'), field('method', 'winclip'), field('map', 'grid')];
    const few = await detect(parts);
    expect(few.statusCode).toBe(200);
    expect(few.json().score).not.toBe(zero.score);
    const again = (await detect(parts)).json();
    expect(again.score).toBe(few.json().score);
    expect(again.map.values).toEqual(few.json().map.values);
  });

  it('takes method=winclip as a query parameter with a raw body', async () => {
    const res = await svc.app.inject({ method: 'POST', url: '/v1/detect?category=bottle&method=winclip&map=none', headers: { 'content-type': 'image/png' }, payload: png });
    expect(res.statusCode).toBe(200);
    expect(res.json().method).toBe('winclip');
  });

  it('custom prompts change the text side of WinCLIP too', async () => {
    const base = [image(), field('category', 'screw'), field('method', 'winclip'), field('map', 'none')];
    const templated = (await detect(base)).json();
    const custom = await detect([...base, field('prompts', 'custom'), field('normal', 'a shiny {}'), field('abnormal', 'a {} with a scratch')]);
    expect(custom.statusCode).toBe(200);
    expect(custom.json().score).not.toBe(templated.score);
  });

  it('/v1/models lists both methods', async () => {
    const [m] = (await svc.app.inject({ url: '/v1/models' })).json().models;
    expect(m.methods).toEqual(['dense-frequency', 'winclip', 'musc']);
  });

  it.each([
    ['a reference without method=winclip', () => detect([image(), reference(), field('category', 'a')]), 400, /reference.*method=winclip/],
    ['a reference with method=ours', () => detect([image(), reference(), field('category', 'a'), field('method', 'ours')]), 400, /method=winclip/],
    ['nine references', () => detect([image(), ...Array.from({ length: 9 }, () => reference()), field('category', 'a'), field('method', 'winclip')]), 400, /at most 8 reference/],
    ['branches with winclip', () => detect([image(), field('category', 'a'), field('method', 'winclip'), field('branches', 'true')]), 400, /branches/],
    ['an unknown method', () => detect([image(), field('category', 'a'), field('method', 'patchcore')]), 400, /method/],
    ['an empty reference', () => detect([image(), reference(Buffer.alloc(0)), field('category', 'a'), field('method', 'winclip')]), 400, /reference 1 is empty/],
    ['a reference that is not an image', () => detect([image(), reference(Buffer.from('hello')), field('category', 'a'), field('method', 'winclip')]), 415, /reference 1/],
    ['a damaged reference', () => detect([image(), reference(png.subarray(0, 60)), field('category', 'a'), field('method', 'winclip')]), 422, /reference 1/],
    ['references but no image', () => detect([reference(), field('category', 'a'), field('method', 'winclip')]), 400, /missing file field "image"/],
  ] as const)('%s → %i', async (_name, send, status, message) => {
    const res = await send();
    expect(res.statusCode).toBe(status);
    expect(res.json().message).toMatch(message);
  });

  it('eight references are accepted', async () => {
    const res = await detect([image(), ...Array.from({ length: 8 }, () => reference()), field('category', 'a'), field('method', 'winclip'), field('map', 'none')]);
    expect(res.statusCode).toBe(200);
  });
});

describe('WINCLIP=0', () => {
  let off: TinyService;
  beforeAll(async () => {
    off = await startTinyService({ winclip: '0' });
  });
  afterAll(() => off?.close());

  it('refuses method=winclip with 400 and lists only dense-frequency', async () => {
    const res = await off.app.inject({ method: 'POST', url: '/v1/detect', ...multipart([image(), field('category', 'a'), field('method', 'winclip')]) });
    expect(res.statusCode).toBe(400);
    expect(res.json().message).toMatch(/WINCLIP=0/);
    expect((await off.app.inject({ url: '/v1/models' })).json().models[0].methods).toEqual(['dense-frequency', 'musc']);
    const ours = await off.app.inject({ method: 'POST', url: '/v1/detect', ...multipart([image(), field('category', 'a'), field('map', 'none')]) });
    expect(ours.statusCode).toBe(200);
  });
});
