// GET /metrics and the structured logs, on the tiny model through real HTTP handling.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.ts';
import { ServiceMetrics } from '../../src/observability/metrics.ts';
import { multipart, startTinyService, type TinyService } from '../support/tiny-service.ts';
import { LEVEL, LogCapture } from '../support/log-capture.ts';
import { retainedBytes } from '../support/memory.ts';
import { partPng, withTextChunk } from '../support/test-images.ts';

const MARKER = 'PIXELS-MUST-NOT-BE-LOGGED-91c2';

let svc: TinyService;
let app: FastifyInstance;
const logs = new LogCapture();
let png: Buffer;

beforeAll(async () => {
  svc = await startTinyService();
  app = await buildApp({ detector: svc.detector, defaultThreshold: 0.5, maxBodyBytes: 1 << 20, logLevel: 'info', logStream: logs, requestTimeoutMs: 60_000 });
  png = withTextChunk(await partPng(), MARKER);
});
afterAll(async () => {
  await app?.close();
  await svc?.close();
});

const detect = (category: string, headers: Record<string, string> = {}) => {
  const form = multipart([{ name: 'image', value: png, filename: 'part.png', type: 'image/png' }, { name: 'category', value: category }]);
  return app.inject({ method: 'POST', url: '/v1/detect', headers: { ...form.headers, ...headers }, payload: form.payload });
};

/** The samples of one metric family, as { labels → value }. */
async function samples(name: string): Promise<Record<string, number>> {
  const text = (await app.inject({ url: '/metrics' })).body;
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = /^(\w+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (m && m[1] === name) out[m[2] ?? ''] = Number(m[3]);
  }
  return out;
}

describe('GET /metrics', () => {
  it('is Prometheus text with requests by route and status, stage histograms, queue, restarts, cache and memory', async () => {
    expect((await detect('pcb')).statusCode).toBe(200);
    expect((await detect('pcb')).statusCode).toBe(200);
    expect((await detect('<bad>')).statusCode).toBe(400);
    expect((await app.inject({ url: '/no/such/page' })).statusCode).toBe(404);

    const res = await app.inject({ url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(res.body).toMatch(/^# HELP http_requests_total /m);
    expect(res.body).toMatch(/^# TYPE http_request_duration_seconds histogram$/m);

    const requests = await samples('http_requests_total');
    expect(requests['{method="POST",route="/v1/detect",status="200"}']).toBe(2);
    expect(requests['{method="POST",route="/v1/detect",status="400"}']).toBe(1);
    // Unknown paths share one label value, so scanners cannot blow up the series count.
    expect(requests['{method="GET",route="unmatched",status="404"}']).toBe(1);
    expect((await samples('http_request_duration_seconds_count'))['{method="POST",route="/v1/detect",status="200"}']).toBe(2);

    const stages = await samples('detection_stage_duration_seconds_count');
    for (const stage of ['decode', 'encode', 'score', 'render', 'total']) expect(stages[`{stage="${stage}"}`]).toBe(2);
    const stageSums = await samples('detection_stage_duration_seconds_sum');
    expect(stageSums['{stage="total"}']).toBeGreaterThan(0);
    expect(stageSums['{stage="total"}']).toBeGreaterThanOrEqual(stageSums['{stage="score"}']);

    expect(await samples('inference_queue_depth')).toEqual({ '': 0 });
    expect(await samples('inference_jobs_running')).toEqual({ '': 0 });
    expect(await samples('inference_worker_restarts_total')).toEqual({ '': 0 });
    // The second "pcb" request found its text embeddings in the cache.
    const hits = (await samples('prompt_cache_hits_total'))[''];
    expect(hits).toBe(svc.detector.prompts.stats().hits);
    expect(hits).toBeGreaterThanOrEqual(1);
    expect((await samples('prompt_cache_misses_total'))['']).toBe(svc.detector.prompts.stats().misses);
    expect((await samples('process_resident_memory_bytes'))['']).toBeGreaterThan(10 * 1024 * 1024);
  });

  it('counts worker restarts from the pool', async () => {
    const metrics = new ServiceMetrics();
    const own = await buildApp({ detector: svc.detector, defaultThreshold: 0.5, maxBodyBytes: 1 << 20, logLevel: 'silent', metrics });
    try {
      await new Promise((r) => setTimeout(r, 0)); // the detector is watched once its promise settles
      svc.detector.runtime.pool.emit('restart', 'test');
      svc.detector.runtime.pool.emit('restart', 'test');
      expect(await metrics.render()).toMatch(/^inference_worker_restarts_total 2$/m);
    } finally {
      await own.close();
    }
    // A closed app stops listening to the pool.
    svc.detector.runtime.pool.emit('restart', 'test');
    expect(await metrics.render()).toMatch(/^inference_worker_restarts_total 2$/m);
  });

  it('keeps apps apart: each has its own registry', async () => {
    const a = new ServiceMetrics();
    const b = new ServiceMetrics();
    a.observeRequest('GET', '/x', 200, 0.01);
    expect(await a.render()).toMatch(/http_requests_total\{method="GET",route="\/x",status="200"\} 1/);
    expect(await b.render()).not.toMatch(/route="\/x"/);
  });
});

describe('logs', () => {
  it('carry the request id on every request line, echo it in x-request-id, and accept the caller’s', async () => {
    logs.clear();
    const res = await detect('bottle', { 'x-request-id': 'ticket-4711' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-request-id']).toBe('ticket-4711');
    const lines = logs.lines.filter((l) => l.reqId === 'ticket-4711');
    // One access line per request at info, written on response.
    expect(lines.map((l) => l.msg)).toEqual(['request completed']);
    expect(lines[0]).toMatchObject({ level: 30, method: 'POST', url: expect.stringMatching(/^\/v1\/detect/), status: 200, ms: expect.any(Number) });
    const generated = await app.inject({ url: '/healthz' });
    expect(generated.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    // An id that could flood or forge log lines is replaced, not logged.
    const hostile = await app.inject({ url: '/healthz', headers: { 'x-request-id': `${'x'.repeat(5000)}\n{"level":60}` } });
    expect(hostile.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('never contain image bytes or response maps; client errors at info, nothing at error', async () => {
    logs.clear();
    await detect('bottle');
    await app.inject({ method: 'POST', url: '/v1/detect?category=a', headers: { 'content-type': 'image/png' }, payload: png.subarray(0, 80) });
    expect(logs.raw.some((l) => l.includes(MARKER))).toBe(false);
    expect(logs.raw.some((l) => l.includes('iVBORw0'))).toBe(false); // base64 PNG
    expect(logs.lines.find((l) => l.msg === 'request rejected')).toMatchObject({ level: LEVEL.info, status: 422, error: 'undecodable_image' });
    expect(logs.atOrAbove(LEVEL.warn)).toEqual([]);
  });
});

describe('memory under sustained load', () => {
  it('stays flat over real HTTP with the request deadline on: nothing per request is retained', async () => {
    const base = await app.listen({ host: '127.0.0.1', port: 0 });
    const image = await sharp({ create: { width: 256, height: 256, channels: 3, background: '#6d6d6d' } }).png().toBuffer();
    const form = multipart([{ name: 'image', value: image, filename: 'part.png', type: 'image/png' }, { name: 'category', value: 'pcb' }, { name: 'map', value: 'none' }]);
    const send = async (count: number) => {
      for (let i = 0; i < count; i++) {
        const res = await fetch(`${base}/v1/detect`, { method: 'POST', headers: form.headers, body: new Uint8Array(form.payload) });
        expect(res.status).toBe(200);
        await res.arrayBuffer();
      }
    };
    await Promise.all([send(20), send(20)]);
    const before = retainedBytes();
    await Promise.all([send(75), send(75)]);
    // A decoded image (and its job) kept per request would add 30 MB here.
    expect(retainedBytes() - before).toBeLessThan(8 * 1024 * 1024);
  });
});
