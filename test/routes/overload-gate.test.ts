// The refusal in front of Fastify (overload-gate.ts), over real sockets: with the queue full a
// detection gets the same 503 as through Fastify, a small body keeps the connection (drained
// after the answer), a large or stalled one loses it, and requests Fastify must see (no valid
// API key, a CORS origin, other routes) still go through Fastify.
import { afterEach, describe, expect, it } from 'vitest';
import http from 'node:http';
import { connect } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { buildApp, type AppOptions } from '../../src/app.ts';
import { ApiKeys } from '../../src/auth/api-keys.ts';
import { ServiceMetrics } from '../../src/observability/metrics.ts';
import { LogCapture } from '../support/log-capture.ts';
import { DRAINED_BODY_MAX_BYTES } from '../../src/routes/overload-gate.ts';
import { LINGER_MS } from '../../src/routes/unread-body.ts';
import { fullDetector } from '../../src/dev/full-detector.ts';

let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

async function start(extra: Partial<AppOptions> = {}) {
  const logs = new LogCapture();
  const metrics = new ServiceMetrics();
  app = await buildApp({ detector: fullDetector, defaultThreshold: 0.5, maxBodyBytes: 4 << 20, logLevel: 'info', logStream: logs, metrics, ...extra });
  const base = await app.listen({ host: '127.0.0.1', port: 0 });
  let connections = 0;
  app.server.on('connection', () => connections++);
  return { base, port: Number(new URL(base).port), logs, metrics, connections: () => connections };
}

function post(base: string, agent: http.Agent, body: Buffer, headers: Record<string, string> = {}, path = '/v1/detect') {
  return new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>((resolve, reject) => {
    const req = http.request(`${base}${path}?category=bottle`, { method: 'POST', agent, headers: { 'content-type': 'image/png', 'content-length': String(body.length), ...headers } }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Headers and `sent` bytes of a body declared `declared` long, then nothing: the raw answer and when the socket closed. */
function stalled(port: number, declared: number, sent: number) {
  return new Promise<{ answer: string; answeredMs: number; closedMs: number }>((resolve, reject) => {
    const started = performance.now();
    let answer = '';
    let answeredMs = NaN;
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(`POST /v1/detect?category=bottle HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: ${declared}\r\n\r\n`);
      socket.write(Buffer.alloc(sent, 7));
    });
    socket.on('data', (d) => {
      answer += d.toString('utf8');
      if (Number.isNaN(answeredMs) && answer.includes('"overloaded"')) answeredMs = performance.now() - started;
    });
    socket.on('error', () => {});
    socket.on('close', () => (answer ? resolve({ answer, answeredMs, closedMs: performance.now() - started }) : reject(new Error('closed without an answer'))));
  });
}

describe('overload gate', () => {
  it('answers 503 overloaded with Retry-After and a request id, logs one access line and counts it, without running the detector', async () => {
    const { base, logs, metrics } = await start();
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const res = await post(base, agent, Buffer.alloc(1000), { 'x-request-id': 'caller-id-1' });
    agent.destroy();
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBe('1');
    expect(res.headers['x-request-id']).toBe('caller-id-1');
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(JSON.parse(res.body)).toEqual({ error: 'overloaded', message: expect.stringMatching(/busy/) });
    const access = logs.lines.filter((l) => l.msg === 'request completed' && l.reqId === 'caller-id-1');
    expect(access).toEqual([expect.objectContaining({ method: 'POST', status: 503, url: '/v1/detect?category=bottle' })]);
    expect(await metrics.render()).toMatch(/http_requests_total\{method="POST",route="\/v1\/detect",status="503"\} 1\n/);
  });

  it('with REFUSAL_DELAY_MS, answers after the pause, the same 503', async () => {
    const { base } = await start({ refusalDelayMs: 60 });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    for (let i = 0; i < 3; i++) {
      const t = performance.now();
      const res = await post(base, agent, Buffer.alloc(1000));
      const ms = performance.now() - t;
      expect(res.status).toBe(503);
      expect(JSON.parse(res.body)).toMatchObject({ error: 'overloaded' });
      expect(ms).toBeGreaterThanOrEqual(55);
    }
    agent.destroy();
  });

  it('a client that leaves during the pause still gets its access line and count', async () => {
    const { port, logs, metrics } = await start({ refusalDelayMs: 300 });
    const socket = connect(port, '127.0.0.1', () => {
      socket.write('POST /v1/detect?category=bottle HTTP/1.1\r\nHost: x\r\nX-Request-Id: gone-1\r\nContent-Type: image/png\r\nContent-Length: 3\r\n\r\nabc');
      setTimeout(() => socket.destroy(), 50);
    });
    socket.on('error', () => {});
    const deadline = Date.now() + 5000;
    while (!logs.lines.some((l) => l.reqId === 'gone-1') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(logs.lines.filter((l) => l.reqId === 'gone-1')).toEqual([expect.objectContaining({ msg: 'request completed', status: 503, clientGone: true })]);
    expect(await metrics.render()).toMatch(/http_requests_total\{method="POST",route="\/v1\/detect",status="503"\} 1\n/);
  });

  it('keeps the connection for small bodies: 50 refusals on one keep-alive socket', async () => {
    const { base, connections } = await start();
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    for (let i = 0; i < 50; i++) {
      const res = await post(base, agent, Buffer.alloc(20_000, i));
      expect(res.status).toBe(503);
      expect(res.headers.connection).toBe('keep-alive');
    }
    agent.destroy();
    expect(connections()).toBe(1);
  });

  it('closes the connection of a body too large to drain, without reading it', async () => {
    const { port } = await start();
    const r = await stalled(port, 10 << 20, 1000);
    expect(r.answer).toMatch(/^HTTP\/1\.1 503/);
    expect(r.answer).toMatch(/\r\nconnection: close\r\n/i);
    // Answered at once; closed after the linger that lets the client read the answer first.
    expect(r.answeredMs).toBeLessThan(500);
    expect(r.closedMs).toBeLessThan(LINGER_MS + 1000);
  });

  it('a small body that stops after the answer loses its connection within the drain bound', async () => {
    const { port } = await start();
    const r = await stalled(port, DRAINED_BODY_MAX_BYTES, 100);
    expect(r.answer).toMatch(/^HTTP\/1\.1 503/);
    expect(r.answeredMs).toBeLessThan(500);
    expect(r.closedMs).toBeGreaterThan(1500);
    expect(r.closedMs).toBeLessThan(5000);
  });

  it('leaves to Fastify what it must answer: a missing API key (401), a CORS origin, other routes', async () => {
    const { base } = await start({ apiKeys: new ApiKeys(['secret-key-123']), corsOrigins: ['https://app.example'] });
    const agent = new http.Agent({ keepAlive: false });
    expect((await post(base, agent, Buffer.alloc(100))).status).toBe(401);
    expect((await post(base, agent, Buffer.alloc(100), { 'x-api-key': 'wrong' })).status).toBe(401);
    expect((await post(base, agent, Buffer.alloc(100), { 'x-api-key': 'secret-key-123' })).status).toBe(503);
    const cors = await post(base, agent, Buffer.alloc(100), { authorization: 'Bearer secret-key-123', origin: 'https://app.example' });
    expect(cors.status).toBe(503);
    expect(cors.headers['access-control-allow-origin']).toBe('https://app.example');
    // Not /v1/detect itself (the gate matches it exactly): Fastify's own answers, the batch
    // route's refusal at its headers included (its connection closed, not kept).
    const other = await fetch(`${base}/v1/detectx`, { method: 'POST', headers: { 'x-api-key': 'secret-key-123', 'content-type': 'text/plain' }, body: 'x' });
    expect(other.status).toBe(405);
    const batch = await post(base, agent, Buffer.alloc(100), { 'x-api-key': 'secret-key-123' }, '/v1/detect/batch');
    expect(batch.status).toBe(503);
    expect(JSON.parse(batch.body)).toMatchObject({ error: 'overloaded' });
    expect(batch.headers.connection).toBe('close');
    agent.destroy();
  });
});
