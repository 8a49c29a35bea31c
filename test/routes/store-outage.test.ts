// The service over a PostgreSQL store that is down at start-up and that goes away later,
// through a TCP proxy the test closes and reopens (the machine's PostgreSQL keeps running):
// /readyz, the retry log lines, 503 store_unavailable for what needs the store, zero-shot
// detections answered all along. Without PostgreSQL the file skips, saying why.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.ts';
import { CategoryProvider } from '../../src/categories/provider.ts';
import { CategoryService, categoryServiceOptions, connectingSettingsStore } from '../../src/categories/service.ts';
import { createClipDetector, type ClipDetector } from '../../src/detection/clip-detector.ts';
import { generateModel } from '../../src/dev/random-model.ts';
import { loadSettings } from '../../src/settings.ts';
import type { ConnectingStore } from '../../src/store/connecting-store.ts';
import { LEVEL, LogCapture } from '../support/log-capture.ts';
import { findPostgres, TcpProxy, TestSchemas, viaPort } from '../support/postgres.ts';
import { until } from '../support/until.js';

const found = await findPostgres();

if ('reason' in found) {
  console.warn(`store outage tests skipped: no PostgreSQL server answered (${found.reason})`);
  describe.skip('store outage (no PostgreSQL server reachable)', () => {
    it('needs PostgreSQL at 127.0.0.1:5432, database test', () => {});
  });
} else {
  const schemas = new TestSchemas(found.url);
  const proxy = TcpProxy.to(found.url);
  const log = new LogCapture();
  let dir: string;
  let app: FastifyInstance;
  let detector: ClipDetector;
  let store: ConnectingStore;
  let service: CategoryService;
  let image: Buffer;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'store-outage-'));
    const model = join(dir, 'tiny');
    generateModel({ arch: 'tiny', seed: 1, out: model });
    const port = await proxy.reservePort(); // nothing listens there yet: the database is down
    const settings = loadSettings({}, {
      model,
      cacheDir: join(dir, 'cache'),
      dataDir: join(dir, 'data'),
      offline: '1',
      promptsDir: join(dir, 'prompts'),
      winclip: '0',
      musc: '0',
      storeUrl: viaPort(found.url, port),
      storeSchema: schemas.next('outage'),
      storePoolSize: '4',
      storeConnectTimeoutMs: '2000',
    });
    store = connectingSettingsStore(settings);
    detector = await createClipDetector(settings, undefined, undefined, store);
    service = new CategoryService(store, detector, categoryServiceOptions(settings));
    app = await buildApp({
      detector,
      defaultThreshold: settings.threshold,
      maxBodyBytes: settings.maxBodyBytes,
      logLevel: 'info',
      logStream: log,
      categories: CategoryProvider.of(service),
      store,
    });
    void store.connect(app.log, { baseDelayMs: 100, maxDelayMs: 400 }).catch(() => {});
    image = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#808080' } }).png().toBuffer();
  }, 120_000);

  afterAll(async () => {
    await app?.close();
    await detector?.close();
    await store?.close();
    await proxy.stop();
    await schemas.drop().catch(() => undefined);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const detect = (category: string) =>
    app.inject({ method: 'POST', url: `/v1/detect?category=${encodeURIComponent(category)}&map=none`, headers: { 'content-type': 'image/png' }, payload: image });
  const readiness = async () => (await app.inject({ url: '/readyz' })).json() as { status: string; message?: string };


  function expectUnavailable(res: { statusCode: number; headers: Record<string, unknown>; json(): { error: string } }) {
    expect(res.statusCode).toBe(503);
    expect(res.json().error).toBe('store_unavailable');
    expect(res.headers['retry-after']).toBe('5');
  }

  describe('a store that is down at start-up', () => {
    it('/readyz is 503 saying why, each attempt is one JSON log line, zero-shot detections are answered, the rest 503', async () => {
      await until('two retry lines', async () => log.lines.filter((l) => l.msg === 'the store is unreachable; retrying').length >= 2);
      const ready = await app.inject({ url: '/readyz' });
      expect(ready.statusCode).toBe(503);
      expect(ready.json()).toMatchObject({ status: 'starting', message: expect.stringMatching(/^the store is unreachable: .*ECONNREFUSED.*, retrying \(attempt \d+\)$/) });
      const retries = log.lines.filter((l) => l.msg === 'the store is unreachable; retrying');
      expect(retries[0]).toMatchObject({ level: 40, component: 'store', backend: 'postgres', attempt: 1, retryInMs: expect.any(Number), reason: expect.stringMatching(/cannot be reached/) });
      expect(retries[1]!.attempt).toBe(2);

      const zeroShot = await detect('screw');
      expect(zeroShot.statusCode).toBe(200);
      expect(zeroShot.json()).toMatchObject({ category: 'screw', categoryResource: null });
      expect(zeroShot.json().detectionId).toBeUndefined();
      expect(service.skippedRecords).toBe(1);
      expect(log.lines.find((l) => l.msg?.startsWith('zero-shot detection answered without a record') && l.category === 'screw')).toMatchObject({ level: 40, reason: expect.stringMatching(/the store is unreachable: .*ECONNREFUSED/) });
      expect((await app.inject({ url: '/metrics' })).body).toMatch(/detection_records_skipped_total\{anomalous="(true|false)"\} 1/);

      expectUnavailable(await app.inject({ url: '/v1/categories' }));
      expectUnavailable(await app.inject({ method: 'PUT', url: '/v1/categories/bottle', payload: { name: 'bottle' } }));
    });

    it('becomes ready when the database comes up', async () => {
      await proxy.start();
      await until('ready', async () => (await readiness()).status === 'ready');
      expect(log.lines.some((l) => l.msg === 'store connected' && typeof l.attempts === 'number' && l.attempts >= 2)).toBe(true);
      expect((await app.inject({ method: 'PUT', url: '/v1/categories/bottle', payload: { name: 'bottle' } })).statusCode).toBe(201);
    });
  });

  describe('a store that goes away later', () => {
    it('stored categories, records and feedback get 503 store_unavailable; zero-shot detections go on; /readyz stays 200 "degraded"', async () => {
      const stored = await detect('bottle');
      expect(stored.statusCode).toBe(200);
      expect(stored.json().categoryResource).toMatchObject({ id: 'bottle' });
      const id = stored.json().detectionId as string;
      expect(id).toEqual(expect.any(String));
      expect(await service.knownCategories()).toContain('bottle');

      await proxy.stop();
      log.clear();
      const skippedBefore = service.skippedRecords;
      expectUnavailable(await app.inject({ url: '/v1/categories' }));
      expectUnavailable(await app.inject({ url: '/v1/categories/bottle' }));
      expectUnavailable(await detect('bottle'));
      expectUnavailable(await app.inject({ url: `/v1/detections/${id}` }));
      expectUnavailable(await app.inject({ method: 'POST', url: `/v1/detections/${id}/feedback`, payload: { label: 'normal' } }));

      const zeroShot = await detect('metal nut');
      expect(zeroShot.statusCode).toBe(200);
      expect(zeroShot.json().detectionId).toBeUndefined();
      expect(service.skippedRecords).toBe(skippedBefore + 1);

      const ready = await app.inject({ url: '/readyz' });
      expect(ready.statusCode).toBe(200);
      expect(ready.json()).toMatchObject({ status: 'degraded', message: expect.stringMatching(/zero-shot detections are served/) });
      expect((await app.inject({ url: '/metrics' })).body).toMatch(/^store_up 0$/m);

      // Its state, not a fault: the going away is said once, each refusal is a warn with its reason, no error with a stack.
      expect(log.lines.filter((l) => l.msg?.startsWith('the store became unreachable'))).toHaveLength(1);
      expect(log.lines.filter((l) => l.msg === 'request refused: service unavailable').length).toBeGreaterThanOrEqual(5);
      expect(log.atOrAbove(LEVEL.error).filter((l) => l.msg === 'request failed')).toEqual([]);

      await proxy.start();
      await until('ready again', async () => (await readiness()).status === 'ready');
      expect(log.lines.filter((l) => l.msg === 'the store is reachable again')).toHaveLength(1);
      expect((await app.inject({ url: '/v1/categories/bottle' })).statusCode).toBe(200);
      expect((await detect('bottle')).json().detectionId).toEqual(expect.any(String));
      expect((await app.inject({ url: '/metrics' })).body).toMatch(/^store_up 1$/m);
    });
  });
}
