// The web page plugin (src/web/plugin.ts): / and /assets/* from a build folder, public whatever
// the API key setting, hidden from the OpenAPI document; a 503 page when the build is missing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.ts';
import { ApiKeys } from '../../src/auth/api-keys.ts';
import type { Detector, ModelInfo } from '../../src/detection/types.ts';

const KEY = 'web-plugin-key-0123456789';

/** Enough of a detector for routes that never detect. */
const detector: Detector = {
  ready: true,
  info: (): ModelInfo => ({ id: 'fake', source: 'local', generatedRandomModel: true, inputSize: 64, grid: 8, denseLayers: [4], denseStart: 3, denseAttention: 'vv', projectionDim: 32, promptModes: ['templated'] }),
  detect: () => Promise.reject(new Error('not used')),
  close: () => Promise.resolve(),
};

let dir: string;
const apps: FastifyInstance[] = [];
const app = async (webRoot: string, keys: string[] = []) => {
  const a = await buildApp({ detector, defaultThreshold: 0.5, maxBodyBytes: 1 << 20, logLevel: 'silent', webRoot, apiKeys: new ApiKeys(keys) });
  apps.push(a);
  return a;
};

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'web-plugin-'));
  mkdirSync(join(dir, 'dist', 'assets'), { recursive: true });
  writeFileSync(join(dir, 'dist', 'index.html'), '<!doctype html><title>page</title><script type="module" src="/assets/app-1234.js"></script>');
  writeFileSync(join(dir, 'dist', 'assets', 'app-1234.js'), 'console.log("hi")');
});
afterAll(async () => {
  await Promise.all(apps.map((a) => a.close()));
  rmSync(dir, { recursive: true, force: true });
});

describe('web page plugin', () => {
  it('serves index.html at / with a strict content security policy, and the hashed bundles', async () => {
    const a = await app(join(dir, 'dist'));
    const page = await a.inject({ url: '/' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.body).toContain('<title>page</title>');
    expect(page.headers['content-security-policy']).toContain("default-src 'self'");
    expect(page.headers['content-security-policy']).not.toMatch(/unsafe-inline|unsafe-eval/);
    const js = await a.inject({ url: '/assets/app-1234.js' });
    expect(js.statusCode).toBe(200);
    expect(js.headers['content-type']).toMatch(/javascript/);
    expect(js.headers['cache-control']).toContain('immutable');
    const missing = await a.inject({ url: '/assets/nope.js' });
    expect(missing.statusCode).toBe(404);
  });

  it('keeps / and /assets/* public when API keys are required; the API still needs a key', async () => {
    const a = await app(join(dir, 'dist'), [KEY]);
    expect((await a.inject({ url: '/' })).statusCode).toBe(200);
    expect((await a.inject({ url: '/assets/app-1234.js' })).statusCode).toBe(200);
    expect((await a.inject({ url: '/v1/models' })).statusCode).toBe(401);
    expect((await a.inject({ url: '/v1/models', headers: { authorization: `Bearer ${KEY}` } })).statusCode).toBe(200);
    expect((await a.inject({ url: '/favicon.ico' })).statusCode).toBe(401);
  });

  it('does not put the page in the OpenAPI document', async () => {
    const a = await app(join(dir, 'dist'));
    const doc = (await a.inject({ url: '/openapi.json' })).json() as { paths: Record<string, unknown> };
    expect(Object.keys(doc.paths)).not.toContain('/');
    expect(Object.keys(doc.paths).some((p) => p.startsWith('/assets'))).toBe(false);
  });

  it('answers a 503 page telling to run npm run build:web when the build is missing', async () => {
    const a = await app(join(dir, 'not-built'));
    for (const url of ['/', '/assets/app-1234.js']) {
      const res = await a.inject({ url });
      expect(res.statusCode).toBe(503);
      expect(res.headers['content-type']).toMatch(/^text\/html/);
      expect(res.body).toContain('npm run build:web');
    }
    expect((await a.inject({ url: '/healthz' })).statusCode).toBe(200);
  });
});
