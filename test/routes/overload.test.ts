// Overload and inference faults through a real listening server, with 1 worker and a queue
// of 2: bursts get 200 or an immediate 503 with Retry-After, the request deadline answers 504
// even for a queued job, and a hung or crashed worker is replaced while the server keeps serving.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from 'node:net';
import sharp from 'sharp';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.ts';
import { ServiceMetrics } from '../../src/observability/metrics.ts';
import { multipart, startTinyService, type TinyService } from '../support/tiny-service.ts';
import { LEVEL, LogCapture } from '../support/log-capture.ts';
import { partPng } from '../support/test-images.ts';
import { sabotage } from '../support/sabotage.ts';

let svc: TinyService;
let app: FastifyInstance;
let base: string;
const logs = new LogCapture();
const metrics = new ServiceMetrics();
let png: Buffer;

beforeAll(async () => {
  svc = await startTinyService({ workers: 1, maxQueue: 2, jobTimeoutMs: 1500 });
  app = await buildApp({ detector: svc.detector, defaultThreshold: 0.5, maxBodyBytes: 1 << 20, logLevel: 'info', logStream: logs, metrics, requestTimeoutMs: 30_000 });
  base = await app.listen({ host: '127.0.0.1', port: 0 });
  png = await partPng();
  // Text embeddings for the category are cached, so each request is one image job.
  expect((await detect(base)).status).toBe(200);
});
afterAll(async () => {
  await app?.close();
  await svc?.close();
});

const pool = () => svc.detector.runtime.pool;

async function detect(at: string) {
  const form = multipart([{ name: 'image', value: png, filename: 'part.png', type: 'image/png' }, { name: 'category', value: 'bottle' }, { name: 'map', value: 'none' }]);
  const res = await fetch(`${at}/v1/detect`, { method: 'POST', headers: form.headers, body: new Uint8Array(form.payload) });
  return { status: res.status, retryAfter: res.headers.get('retry-after'), body: await res.json() };
}

async function metricValue(name: string): Promise<number> {
  const line = (await metrics.render()).split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line ? Number(line.split(' ').pop()) : 0;
}

describe('overload', () => {
  it('a burst of 20 gets only 200s and immediate 503s with Retry-After; every accepted request completes', async () => {
    // The worker is busy for a moment, so the burst meets a full queue.
    await sabotage(pool(), 'hang', 1000);
    const started = performance.now();
    const answers = await Promise.all(
      Array.from({ length: 20 }, async () => {
        const a = await detect(base);
        return { ...a, ms: performance.now() - started };
      }),
    );
    const ok = answers.filter((a) => a.status === 200);
    const refused = answers.filter((a) => a.status === 503);
    expect(ok.length + refused.length).toBe(20);
    expect(ok.length).toBeGreaterThanOrEqual(3); // one running, two queued
    expect(refused.length).toBeGreaterThanOrEqual(1);
    for (const r of refused) {
      expect(r.retryAfter).toMatch(/^\d+$/);
      expect(r.body).toEqual({ error: 'overloaded', message: expect.stringMatching(/busy/) });
    }
    // Refused at once: every 503 is out before the busy worker finishes anything.
    expect(Math.max(...refused.map((r) => r.ms))).toBeLessThan(Math.min(...ok.map((a) => a.ms)));
    expect(Math.min(...ok.map((a) => a.ms))).toBeGreaterThan(900);
    for (const a of ok) expect(a.body.category).toBe('bottle');
    expect(pool().queued).toBe(0);
    expect(await metricValue('http_requests_total{method="POST",route="/v1/detect",status="503"}')).toBe(refused.length);
  });

  it('with the queue full, a detection is refused before its body is read: a slow upload gets 503 at once', async () => {
    await sabotage(pool(), 'hang', 1500);
    const accepted = Array.from({ length: 3 }, () => detect(base)); // one running, two queued
    for (let i = 0; i < 100 && !pool().full; i++) await new Promise((r) => setTimeout(r, 20));
    expect(pool().full).toBe(true);
    const { port } = new URL(base);
    const started = performance.now();
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), '127.0.0.1', () => {
        // Headers and the start of a 1 MB body, then nothing: only a refusal before reading can
        // answer (and, the body being too large to drain, the connection closes).
        socket.write(`POST /v1/detect?category=bottle HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: ${png.length + 1_000_000}\r\n\r\n`);
        socket.write(png);
      });
      let data = '';
      socket.on('data', (d) => (data += d.toString('utf8')));
      socket.on('error', reject);
      socket.on('close', () => resolve(data));
    });
    expect(performance.now() - started).toBeLessThan(500);
    expect(answer).toMatch(/^HTTP\/1\.1 503/);
    expect(answer).toMatch(/retry-after: \d+/i);
    expect(JSON.parse(answer.split('\r\n\r\n')[1])).toMatchObject({ error: 'overloaded' });
    expect((await Promise.all(accepted)).map((a) => a.status)).toEqual([200, 200, 200]);
  });

  it('counts a detection from the end of its upload: while the admitted ones still decode (not queued yet), the next is refused at once', async () => {
    // Three 16 MP uploads (a few kB of PNG, ~0.1–0.3 s of decoding each) take the pool's 3 places.
    const big = await sharp({ create: { width: 4000, height: 4000, channels: 3, background: '#808080' } }).png().toBuffer();
    const heavy = Array.from({ length: 3 }, () => fetch(`${base}/v1/detect?category=bottle&map=none`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: new Uint8Array(big) }));
    // Once their bodies are in, they decode; the pool has not seen them yet. A fourth request
    // meanwhile is refused before its own decoding: its bytes are not an image, which decoding
    // would have answered with 422.
    await new Promise((r) => setTimeout(r, 30));
    const held = pool().queued + pool().running;
    const res = await fetch(`${base}/v1/detect?category=bottle&map=none`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: new Uint8Array(Buffer.from('not a png at all')) });
    expect({ status: res.status, body: await res.json() }).toMatchObject({ status: 503, body: { error: 'overloaded' } });
    // Refused while some admitted detection was still decoding: pool.full alone would have let it in.
    expect(held).toBeLessThan(3);
    expect((await Promise.all(heavy)).map((r) => r.status)).toEqual([200, 200, 200]);
  });

  it('REQUEST_TIMEOUT_MS answers 504 for a running and a queued job, and the queued one leaves the queue', async () => {
    const strict = await buildApp({ detector: svc.detector, defaultThreshold: 0.5, maxBodyBytes: 1 << 20, logLevel: 'silent', requestTimeoutMs: 200 });
    const at = await strict.listen({ host: '127.0.0.1', port: 0 });
    try {
      await sabotage(pool(), 'hang', 700);
      const started = performance.now();
      const [running, queued] = await Promise.all([detect(at), new Promise((r) => setTimeout(r, 30)).then(() => detect(at))]);
      const elapsed = performance.now() - started;
      expect(running).toMatchObject({ status: 504, body: { error: 'timeout' } });
      expect(queued).toMatchObject({ status: 504, body: { error: 'timeout' } });
      expect(elapsed).toBeLessThan(650);
      expect(pool().queued).toBe(0);
    } finally {
      await strict.close();
    }
    // The worker comes back on its own; nothing was replaced.
    const restarts = pool().restarts;
    expect((await detect(base)).status).toBe(200);
    expect(pool().restarts).toBe(restarts);
  });
});

describe('worker faults', () => {
  it('a hung worker is replaced after JOB_TIMEOUT_MS: 504 for its request, then the next one succeeds', async () => {
    const restarts = pool().restarts;
    await sabotage(pool(), 'hang', 60_000);
    const hung = await detect(base);
    expect(hung).toMatchObject({ status: 504, body: { error: 'timeout' } });
    expect(pool().restarts).toBe(restarts + 1);
    expect((await detect(base)).status).toBe(200);
    expect(await metricValue('inference_worker_restarts_total')).toBeGreaterThanOrEqual(1);
    expect(logs.lines.some((l) => l.msg === 'inference worker replaced' && l.level === LEVEL.warn)).toBe(true);
  });

  it('a worker killed mid-request: 500 JSON for that request, replaced, and the next request succeeds', async () => {
    const restarts = pool().restarts;
    logs.clear();
    await sabotage(pool(), 'crash');
    const crashed = await detect(base);
    expect(crashed.status).toBe(500);
    expect(crashed.body).toEqual({ error: 'inference_failed', message: expect.stringMatching(/restarted/) });
    expect(pool().restarts).toBe(restarts + 1);
    // The service's own fault is the one thing logged at error level.
    expect(logs.atOrAbove(LEVEL.error).map((l) => l.msg)).toEqual(['request failed']);
    const next = await detect(base);
    expect(next.status).toBe(200);
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect(await metricValue('inference_worker_restarts_total')).toBe(pool().restarts);
  });
});
