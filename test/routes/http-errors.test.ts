// Errors raised below the routes, over a real socket: Node's own (headers too large, a
// malformed request line) come back as {error, message} JSON; a wrong method on a real route
// is 405 with Allow; the rate limit never counts the operational routes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.ts';
import type { Detector } from '../../src/detection/types.ts';
import { ApiKeys } from '../../src/auth/api-keys.ts';

const detector: Detector = {
  ready: true,
  info: () => ({ id: 'stub' }) as never,
  detect: async () => ({ category: 'bottle' }) as never,
  close: async () => {},
};

let app: FastifyInstance;
let base: string;
let port: number;

beforeAll(async () => {
  app = await buildApp({ detector, defaultThreshold: 0.5, maxBodyBytes: 1 << 20, logLevel: 'silent', rateLimit: { max: 3, windowMs: 60_000 } });
  base = await app.listen({ host: '127.0.0.1', port: 0 });
  port = (app.server.address() as { port: number }).port;
});
afterAll(async () => {
  await app?.close();
});

/** Writes `text` on a fresh connection and reads until the server closes it. */
function exchange(text: string): Promise<{ status: number; headers: string; body: any }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(text));
    let data = '';
    socket.on('data', (d) => (data += d.toString('utf8')));
    socket.on('error', reject);
    socket.on('close', () => {
      const [headers, body = ''] = data.split('\r\n\r\n');
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(headers)?.[1] ?? 0), headers, body: body ? JSON.parse(body) : undefined });
    });
  });
}

describe("Node's own errors", () => {
  it('headers too large: 431 JSON', async () => {
    const a = await exchange(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect(a.status).toBe(431);
    expect(a.headers).toMatch(/content-type: application\/json/i);
    expect(a.body).toEqual({ error: 'headers_too_large', message: expect.any(String) });
  });

  it('a malformed request line: 400 JSON', async () => {
    const a = await exchange('THIS IS NOT HTTP\r\n\r\n');
    expect(a.status).toBe(400);
    expect(a.body).toEqual({ error: 'bad_request', message: expect.stringMatching(/could not be parsed/) });
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
  });
});

describe('method not allowed', () => {
  it('GET /v1/detect: 405 with Allow: POST', async () => {
    const res = await fetch(`${base}/v1/detect`);
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('POST');
    expect(await res.json()).toEqual({ error: 'method_not_allowed', message: expect.stringMatching(/GET is not allowed on \/v1\/detect/) });
  });

  it('DELETE /healthz: 405 allowing GET and HEAD; an unknown path stays 404', async () => {
    const res = await fetch(`${base}/healthz`, { method: 'DELETE' });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('GET, HEAD');
    expect((await fetch(`${base}/nowhere`, { method: 'DELETE' })).status).toBe(404);
  });
});

describe('rate limit', () => {
  it('probes, metrics and the API description are never counted nor refused', async () => {
    for (let i = 0; i < 10; i++) {
      for (const path of ['/healthz', '/readyz', '/metrics', '/openapi.json']) expect((await fetch(`${base}${path}`)).status).toBe(200);
    }
    const counted = [];
    for (let i = 0; i < 4; i++) counted.push((await fetch(`${base}/v1/models`)).status);
    expect(counted).toEqual([200, 200, 200, 429]);
  });
});

describe('CORS (CORS_ORIGINS)', () => {
  it('off by default; a listed origin gets its headers and a preflight passes without a key', async () => {
    const plain = await fetch(`${base}/healthz`, { headers: { origin: 'https://app.example.com' } });
    expect(plain.headers.get('access-control-allow-origin')).toBeNull();
    const withCors = await buildApp({ detector, defaultThreshold: 0.5, maxBodyBytes: 1 << 20, logLevel: 'silent', corsOrigins: ['https://app.example.com'], apiKeys: new ApiKeys(['k'.repeat(20)]) });
    const at = await withCors.listen({ host: '127.0.0.1', port: 0 });
    try {
      const ok = await fetch(`${at}/healthz`, { headers: { origin: 'https://app.example.com' } });
      expect(ok.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
      const other = await fetch(`${at}/healthz`, { headers: { origin: 'https://evil.example' } });
      expect(other.headers.get('access-control-allow-origin')).toBeNull();
      const preflight = await fetch(`${at}/v1/detect`, {
        method: 'OPTIONS',
        headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST', 'access-control-request-headers': 'x-api-key' },
      });
      expect(preflight.status).toBe(204);
      expect(preflight.headers.get('access-control-allow-methods')).toMatch(/POST/);
      // The key is still required for the request itself.
      expect((await fetch(`${at}/v1/models`, { headers: { origin: 'https://app.example.com' } })).status).toBe(401);
    } finally {
      await withCors.close();
    }
  });
});
