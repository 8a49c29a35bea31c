// API keys and the per-key rate limit through real HTTP handling, on the tiny model.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { appOptionsFromSettings, buildApp } from '../../src/app.ts';
import { ApiKeys, readApiKeys } from '../../src/auth/api-keys.ts';
import { loadSettings, SettingsError } from '../../src/settings.ts';
import { multipart, startTinyService, type TinyService } from '../support/tiny-service.ts';
import { LogCapture } from '../support/log-capture.ts';
import { partPng } from '../support/test-images.ts';

const KEY_A = 'key-a-0123456789abcdef';
const KEY_B = 'key-b-fedcba9876543210';

let svc: TinyService;
let app: FastifyInstance;
let dir: string;
const logs = new LogCapture();
let png: Buffer;

beforeAll(async () => {
  svc = await startTinyService();
  dir = mkdtempSync(join(tmpdir(), 'auth-'));
  png = await partPng();
  app = await buildApp({ detector: svc.detector, defaultThreshold: 0.5, maxBodyBytes: 1 << 20, logLevel: 'info', logStream: logs, apiKeys: new ApiKeys([KEY_A, KEY_B]) });
});
afterAll(async () => {
  await app?.close();
  await svc?.close();
  rmSync(dir, { recursive: true, force: true });
});

const detect = (target: FastifyInstance, headers: Record<string, string> = {}) => {
  const form = multipart([{ name: 'image', value: png, filename: 'part.png', type: 'image/png' }, { name: 'category', value: 'bottle' }, { name: 'map', value: 'none' }]);
  return target.inject({ method: 'POST', url: '/v1/detect', headers: { ...form.headers, ...headers }, payload: form.payload });
};

describe('API keys', () => {
  it('accepts a key as Authorization: Bearer or as x-api-key', async () => {
    expect((await detect(app, { authorization: `Bearer ${KEY_A}` })).statusCode).toBe(200);
    expect((await detect(app, { authorization: `bearer ${KEY_B}` })).statusCode).toBe(200);
    expect((await detect(app, { 'x-api-key': KEY_A })).statusCode).toBe(200);
    expect((await app.inject({ url: '/v1/models', headers: { 'x-api-key': KEY_B } })).statusCode).toBe(200);
  });

  it('answers 401 with one message whatever was wrong, before reading the upload', async () => {
    const attempts: Record<string, string>[] = [
      {},
      { authorization: KEY_A }, // no scheme
      { authorization: `Basic ${Buffer.from(`u:${KEY_A}`).toString('base64')}` },
      { authorization: 'Bearer ' },
      { authorization: `Bearer ${KEY_A.slice(0, -1)}` }, // a prefix of a real key
      { authorization: `Bearer ${KEY_A}x` },
      { authorization: `Bearer ${KEY_A.replace('a', 'b')}` }, // same length, one character off
      { 'x-api-key': 'not-a-key' },
    ];
    const answers = await Promise.all(attempts.map((h) => detect(app, h)));
    for (const res of answers) {
      expect(res.statusCode).toBe(401);
      expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
      expect(res.json()).toEqual(answers[0].json());
    }
    expect(answers[0].json()).toEqual({ error: 'unauthorized', message: expect.stringMatching(/API key/) });
    // An oversized body without a key gets 401, not 413: the key is checked before the body is read.
    const big = await app.inject({ method: 'POST', url: '/v1/detect?category=a', headers: { 'content-type': 'image/png' }, payload: Buffer.alloc(2 << 20) });
    expect(big.statusCode).toBe(401);
    expect((await app.inject({ url: '/metrics' })).statusCode).toBe(401);
    expect((await app.inject({ url: '/v1/models' })).statusCode).toBe(401);
  });

  it('keeps health, readiness and the API description open', async () => {
    for (const url of ['/healthz', '/readyz', '/openapi.json', '/docs']) {
      expect({ url, status: (await app.inject({ url })).statusCode }).toEqual({ url, status: 200 });
    }
  });

  it('never writes a key to the logs', () => {
    expect(logs.raw.length).toBeGreaterThan(0);
    expect(logs.raw.some((l) => l.includes(KEY_A) || l.includes(KEY_B))).toBe(false);
  });

  it('matches by digest: keys of any length, a stable id per key, nothing for empty input', () => {
    const keys = new ApiKeys([KEY_A, 'a'.repeat(200)]);
    const id = keys.match(KEY_A);
    expect(id).toMatch(/^[0-9a-f]{16}$/);
    expect(keys.match(KEY_A)).toBe(id);
    expect(keys.match('a'.repeat(200))).not.toBe(id);
    expect(keys.match('a'.repeat(199))).toBeUndefined();
    expect(keys.match('')).toBeUndefined();
    expect(keys.match(undefined)).toBeUndefined();
    expect(new ApiKeys([]).enabled).toBe(false);
  });
});

describe('keys from settings', () => {
  it('reads API_KEYS and API_KEYS_FILE (comments and blank lines skipped)', async () => {
    const file = join(dir, 'keys.txt');
    writeFileSync(file, `# operators\n${KEY_B}\n\n  # retired: old-key-000000000000\n`);
    const settings = loadSettings({ API_KEYS: KEY_A, API_KEYS_FILE: file }, { model: 'unused' });
    const keys = readApiKeys(settings);
    expect(keys.match(KEY_A)).toBeDefined();
    expect(keys.match(KEY_B)).toBeDefined();
    expect(keys.match('old-key-000000000000')).toBeUndefined();
    const fromSettings = await buildApp(appOptionsFromSettings({ ...svc.settings, apiKeysFile: file, logLevel: 'silent' }, svc.detector));
    expect((await fromSettings.inject({ url: '/v1/models' })).statusCode).toBe(401);
    expect((await fromSettings.inject({ url: '/v1/models', headers: { 'x-api-key': KEY_B } })).statusCode).toBe(200);
    await fromSettings.close();
  });

  it('refuses short keys, a missing file and a file with a malformed line, naming the variable', () => {
    expect(() => loadSettings({ API_KEYS: 'short' })).toThrow(/API_KEYS="short": .*16-256 characters/);
    expect(() => readApiKeys({ apiKeysFile: join(dir, 'missing.txt') })).toThrow(SettingsError);
    expect(() => readApiKeys({ apiKeysFile: join(dir, 'missing.txt') })).toThrow(/API_KEYS_FILE=.*ENOENT/);
    const bad = join(dir, 'bad.txt');
    writeFileSync(bad, `${KEY_A}\nhas spaces in it 0123456789\n`);
    expect(() => readApiKeys({ apiKeysFile: bad })).toThrow(/API_KEYS_FILE=.*line 2/);
  });
});

describe('rate limit', () => {
  it('limits each key on its own with 429 and Retry-After; probes are never limited', async () => {
    const limited = await buildApp({
      detector: svc.detector,
      defaultThreshold: 0.5,
      maxBodyBytes: 1 << 20,
      logLevel: 'silent',
      apiKeys: new ApiKeys([KEY_A, KEY_B]),
      rateLimit: { max: 2, windowMs: 60_000 },
    });
    try {
      const a = { 'x-api-key': KEY_A };
      expect((await detect(limited, a)).statusCode).toBe(200);
      expect((await limited.inject({ url: '/v1/models', headers: a })).statusCode).toBe(200);
      const third = await detect(limited, a);
      expect(third.statusCode).toBe(429);
      expect(Number(third.headers['retry-after'])).toBeGreaterThan(0);
      expect(third.json()).toEqual({ error: 'rate_limited', message: expect.stringMatching(/2 requests per 1 minute/) });
      // Another key has its own budget.
      expect((await detect(limited, { authorization: `Bearer ${KEY_B}` })).statusCode).toBe(200);
      for (let i = 0; i < 5; i++) expect((await limited.inject({ url: '/healthz' })).statusCode).toBe(200);
      // A wrong key is refused before it could use anyone's budget.
      expect((await detect(limited, { 'x-api-key': 'x'.repeat(20) })).statusCode).toBe(401);
    } finally {
      await limited.close();
    }
  });

  it('without keys, limits per client address', async () => {
    const open = await buildApp({ detector: svc.detector, defaultThreshold: 0.5, maxBodyBytes: 1 << 20, logLevel: 'silent', rateLimit: { max: 1, windowMs: 60_000 } });
    try {
      expect((await open.inject({ url: '/v1/models', remoteAddress: '10.0.0.1' })).statusCode).toBe(200);
      expect((await open.inject({ url: '/v1/models', remoteAddress: '10.0.0.1' })).statusCode).toBe(429);
      expect((await open.inject({ url: '/v1/models', remoteAddress: '10.0.0.2' })).statusCode).toBe(200);
    } finally {
      await open.close();
    }
  });
});
