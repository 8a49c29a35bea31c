// Images as answers of POST /v1/detect through real HTTP handling (inject) on the tiny model:
// the PNG body (format=png, Accept: image/png) with the verdict in headers, map URLs
// (format=url) served by GET /v1/maps/<token> until they expire, and what the overlay draws.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { buildApp } from '../../src/app.ts';
import { ApiKeys } from '../../src/auth/api-keys.ts';
import { detectResponseSchema } from '../../src/routes/response-schemas.ts';
import { NORMAL_COLOUR } from '../../src/imaging/colormap.ts';
import { REGION_COLOUR } from '../../src/imaging/overlay-marks.ts';
import { legendLayout } from '../../src/imaging/legend.ts';
import { multipart, startTinyService, type TinyService } from '../support/tiny-service.ts';
import { partPng } from '../support/test-images.ts';

// Long enough for a GET right after the POST on a loaded machine, short enough to wait out.
const TTL_MS = 1500;

let svc: TinyService;
let png: Buffer;

beforeAll(async () => {
  svc = await startTinyService({ mapUrlTtlMs: TTL_MS });
  png = await partPng();
});
afterAll(() => svc?.close());

const raw = (query: string, headers: Record<string, string> = {}) =>
  svc.app.inject({ method: 'POST', url: `/v1/detect?category=metal%20plate${query}`, headers: { 'content-type': 'image/png', ...headers }, payload: png });
const form = (fields: Record<string, string>, headers: Record<string, string> = {}) => {
  const body = multipart([{ name: 'image', value: png, filename: 'part.png', type: 'image/png' }, ...Object.entries(fields).map(([name, value]) => ({ name, value }))]);
  return svc.app.inject({ method: 'POST', url: '/v1/detect', payload: body.payload, headers: { ...body.headers, ...headers } });
};

async function decode(buf: Buffer) {
  const { data, info } = await sharp(buf).raw().toBuffer({ resolveWithObject: true });
  const px = (x: number, y: number) => Array.from(data.subarray((y * info.width + x) * info.channels, (y * info.width + x) * info.channels + 3));
  return { data, width: info.width, height: info.height, px };
}

describe('PNG answers', () => {
  it('Accept: image/png → the overlay PNG at the image size, the verdict in headers', async () => {
    const res = await raw('', { accept: 'image/png', 'x-request-id': 'req-42' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('image/png');
    const img = await decode(res.rawPayload);
    expect([img.width, img.height]).toEqual([96, 64]);
    const score = Number(res.headers['x-anomaly-score']);
    const threshold = Number(res.headers['x-anomaly-threshold']);
    expect(score).toBeGreaterThanOrEqual(0);
    expect(score).toBeLessThanOrEqual(1);
    expect(threshold).toBe(0.5);
    expect(res.headers['x-anomaly-verdict']).toBe(score >= threshold ? 'anomalous' : 'normal');
    expect(res.headers['x-threshold-source']).toBe('default');
    expect(res.headers['x-detection-id']).toMatch(/.+/);
    expect(res.headers['x-request-id']).toBe('req-42');
    expect(Number(res.headers['x-region-threshold'])).toBe(threshold);
    expect(res.headers['x-calibrated']).toBe('false');
    expect(res.headers['x-model-warning']).toMatch(/random weights/); // the tiny test model is a generated one
    // The same score as the JSON answer.
    expect((await raw('&map=none')).json().score).toBe(score);
  });

  it('answers JSON unless Accept prefers image/png to JSON', async () => {
    for (const accept of ['*/*', 'application/json', 'image/png, application/json', 'image/png;q=0.5, application/json']) {
      expect((await raw('&map=none', { accept })).headers['content-type'], accept).toMatch(/^application\/json/);
    }
    for (const accept of ['image/png, application/json;q=0.9', 'image/*', 'image/png;q=1, */*;q=0.1']) {
      expect((await raw('', { accept })).headers['content-type'], accept).toBe('image/png');
    }
  });

  it('format=png sends the overlay by default and the heatmap with map=png, the same PNG as the JSON map', async () => {
    const overlay = await form({ category: 'pcb', format: 'png' });
    expect(overlay.statusCode).toBe(200);
    const inlineOverlay = (await form({ category: 'pcb', map: 'overlay' })).json().map;
    expect(overlay.rawPayload.equals(Buffer.from(inlineOverlay.data, 'base64'))).toBe(true);
    const heat = await form({ category: 'pcb', format: 'png', map: 'png' }, { accept: 'application/json' });
    expect(heat.headers['content-type']).toBe('image/png');
    const inlineHeat = (await form({ category: 'pcb', map: 'png' })).json().map;
    expect(heat.rawPayload.equals(Buffer.from(inlineHeat.data, 'base64'))).toBe(true);
  });

  it('format=png with map=grid or none, or with branches, is a 400 saying why', async () => {
    for (const [fields, message] of [
      [{ map: 'grid' }, /map=grid has no image.*map=overlay or map=png/],
      [{ map: 'none' }, /map=none has no image/],
      [{ branches: 'true' }, /branches=true needs a JSON answer/],
    ] as const) {
      const res = await form({ category: 'pcb', format: 'png', ...fields });
      expect(res.statusCode).toBe(400);
      expect(res.json()).toMatchObject({ error: 'bad_request', message: expect.stringMatching(message) });
    }
    const accepted = await raw('&map=grid', { accept: 'image/png' });
    expect(accepted.statusCode).toBe(400);
    expect(accepted.json().message).toMatch(/Accept: image\/png/);
    expect((await raw('&format=gif')).statusCode).toBe(400);
  });
});

describe('map URLs (format=url)', () => {
  it('gives a URL that serves the PNG, then expires with 404 map_expired', async () => {
    const res = await form({ category: 'pcb', format: 'url', map: 'overlay' });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(() => detectResponseSchema.parse(body)).not.toThrow();
    expect(body.map).toMatchObject({ type: 'overlay', width: 96, height: 64, url: expect.stringMatching(/^\/v1\/maps\/[\w-]{43}$/) });
    expect(body.map).not.toHaveProperty('data');
    const expiresAt = Date.parse(body.map.expiresAt);
    expect(expiresAt - Date.now()).toBeLessThanOrEqual(TTL_MS);

    const got = await svc.app.inject({ url: body.map.url });
    expect(got.statusCode).toBe(200);
    expect(got.headers['content-type']).toBe('image/png');
    expect(got.headers['cache-control']).toMatch(/^private/);
    const img = await decode(got.rawPayload);
    expect([img.width, img.height]).toEqual([96, 64]);

    await new Promise((r) => setTimeout(r, Math.max(0, expiresAt - Date.now()) + 50));
    const gone = await svc.app.inject({ url: body.map.url });
    expect(gone.statusCode).toBe(404);
    expect(gone.json()).toMatchObject({ error: 'map_expired', message: expect.stringMatching(/MAP_URL_TTL_MS/) });
  });

  it('gives the branch maps URLs too; an unknown token is 404 map_expired', async () => {
    const body = (await form({ category: 'pcb', format: 'url', branches: 'true' })).json();
    for (const b of ['full', 'high', 'low']) expect(body.branches[b].map.url).toMatch(/^\/v1\/maps\//);
    expect(new Set([body.map.url, ...['full', 'high', 'low'].map((b) => body.branches[b].map.url)]).size).toBe(4);
    const unknown = await svc.app.inject({ url: '/v1/maps/not-a-token' });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json().error).toBe('map_expired');
  });

  it('needs the API key like every /v1 route', async () => {
    const key = 'k'.repeat(20);
    const secured = await buildApp({ detector: svc.detector, defaultThreshold: 0.5, maxBodyBytes: 1 << 20, logLevel: 'silent', apiKeys: new ApiKeys([key]) });
    try {
      const res = await secured.inject({ method: 'POST', url: '/v1/detect?category=pcb&format=url', headers: { 'content-type': 'image/png', 'x-api-key': key }, payload: png });
      const url = res.json().map.url;
      expect((await secured.inject({ url })).statusCode).toBe(401);
      expect((await secured.inject({ url, headers: { authorization: `Bearer ${key}` } })).statusCode).toBe(200);
    } finally {
      await secured.close();
    }
  });
});

describe('the overlay', () => {
  it('outlines each region box and carries the legend bar', async () => {
    // A threshold inside the map's own range, so there are regions to box.
    const grid: number[] = (await form({ category: 'pcb', map: 'grid' })).json().map.values;
    const sorted = [...grid].sort((a, b) => a - b);
    const threshold = Number(sorted[Math.floor(sorted.length * 0.8)].toFixed(4));
    const json = (await form({ category: 'pcb', map: 'none', threshold: String(threshold) })).json();
    expect(json.regions.length).toBeGreaterThan(0);
    const res = await form({ category: 'pcb', format: 'png', threshold: String(threshold) });
    expect(res.headers['x-anomaly-threshold']).toBe(String(threshold));
    const img = await decode(res.rawPayload);

    const legend = legendLayout(96, 64, threshold)!;
    const inLegend = (x: number, y: number) => x >= legend.panel.x && x < legend.panel.x + legend.panel.w && y >= legend.panel.y && y < legend.panel.y + legend.panel.h;
    const { x, y, w, h } = json.regions[0].bbox;
    const outline: Array<[number, number]> = [];
    for (let i = x; i < x + w; i++) outline.push([i, y], [i, y + h - 1]);
    for (let j = y; j < y + h; j++) outline.push([x, j], [x + w - 1, j]);
    const visible = outline.filter(([px, py]) => !inLegend(px, py));
    expect(visible.length).toBeGreaterThan(0);
    for (const [px, py] of visible) expect(img.px(px, py)).toEqual([...REGION_COLOUR]);

    // The legend's bar starts at the normal colour, the same on every image.
    expect(img.px(legend.bar.x, legend.bar.y + 1)).toEqual([...NORMAL_COLOUR]);
  });
});
