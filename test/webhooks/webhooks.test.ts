// Webhooks for ticketing bots: a real HTTP receiver in the test checks every signature; the
// detections run on the tiny model (threshold 0 makes any image anomalous, 1 none). Events go
// through the store's outbox (SQLite in a folder per test), so restarts are real: another app
// on the same folder.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import sharp from 'sharp';
import type { FastifyInstance } from 'fastify';
import { ServiceMetrics } from '../../src/observability/metrics.ts';
import { loadSettings } from '../../src/settings.ts';
import { signWebhook, verifyWebhook } from '../../src/webhooks/signature.ts';
import type { WebhookOptions } from '../../src/webhooks/sender.ts';
import { startTinyService, type TinyService } from '../support/tiny-service.ts';
import { detectEvent, startEventApp } from '../support/event-app.ts';
import { LEVEL } from '../support/log-capture.ts';
import { partPng } from '../support/test-images.ts';
import { until } from '../support/until.js';

const SECRET = 'whsec-test-0123456789';

interface Delivery {
  headers: IncomingMessage['headers'];
  body: string;
  valid: boolean;
}

/** A receiver that answers each POST with the next status of `script` (then 200), or never when 0. */
class Receiver {
  readonly received: Delivery[] = [];
  url = '';
  private server!: Server;
  private waiters: Array<() => void> = [];
  private hung: Array<() => void> = [];

  constructor(private readonly script: number[] = []) {}

  async start(port = 0): Promise<string> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const valid = verifyWebhook(SECRET, { signature: req.headers['x-signature-256'] as string, timestamp: req.headers['x-webhook-timestamp'] as string, body });
        this.received.push({ headers: req.headers, body, valid });
        this.waiters.splice(0).forEach((wake) => wake());
        const status = this.script.length ? this.script.shift()! : 200;
        if (status === 0) this.hung.push(() => res.destroy());
        else res.writeHead(status).end();
      });
    });
    await new Promise<void>((resolve) => this.server.listen(port, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hooks/anomaly`;
    return this.url;
  }

  async until(count: number, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.received.length < count) {
      if (Date.now() > deadline) throw new Error(`receiver got ${this.received.length} of ${count} deliveries`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  }

  events(): any[] {
    return this.received.map((d) => JSON.parse(d.body));
  }

  async stop(): Promise<void> {
    this.hung.splice(0).forEach((end) => end());
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

let svc: TinyService;
let png: Buffer;
const opened: Array<{ close(): Promise<unknown> }> = [];

beforeAll(async () => {
  svc = await startTinyService();
  png = await partPng();
});
afterEach(async () => {
  for (const thing of opened.splice(0).reverse()) await thing.close();
});
afterAll(() => svc?.close());

interface SetUpOptions {
  /** The data folder (a new one by default): the same folder is the same outbox. */
  dataDir?: string;
  /** Send here instead of to a new receiver (one that is down, or shared with another app). */
  url?: string;
  receiver?: Receiver;
  outboxMaxBytes?: number;
}

async function setUp(script: number[], webhook: Partial<WebhookOptions> = {}, opts: SetUpOptions = {}) {
  const receiver = opts.receiver ?? new Receiver(script);
  const url = opts.url ?? (opts.receiver ? opts.receiver.url : await receiver.start());
  if (!opts.receiver && !opts.url) opened.push({ close: () => receiver.stop() });
  const webhookOptions = { url, secret: SECRET, maxAttempts: 5, backoffMs: 20, timeoutMs: 2000, includeOverlay: false, shutdownGraceMs: 200, pollMs: 100, ...webhook };
  const { app, store, metrics, logs, dataDir } = await startEventApp(svc, opened, { dataDir: opts.dataDir, outboxMaxBytes: opts.outboxMaxBytes, webhook: webhookOptions });
  return { receiver, metrics, logs, app, store, dataDir };
}

/** A local URL where nothing listens (yet): the port of a server just closed. */
async function freePortUrl(): Promise<{ url: string; port: number }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return { url: `http://127.0.0.1:${port}/hooks/anomaly`, port };
}


const detect = (app: FastifyInstance, threshold: number, map = 'none', requestId?: string) => detectEvent(app, png, threshold, { map, requestId });

const metric = async (metrics: ServiceMetrics, series: string) => {
  const line = (await metrics.render()).split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.split(' ')[1]) : 0;
};

describe('webhooks', () => {
  it('POSTs a signed event for an anomalous detection', async () => {
    const { receiver, app, store } = await setUp([]);
    const res = await detect(app, 0);
    expect(res.statusCode).toBe(200);
    const result = res.json();
    const record = await store.getDetection(result.detectionId);
    expect(result.isAnomalous).toBe(true);
    await receiver.until(1);
    const [delivery] = receiver.received;
    expect(delivery.valid).toBe(true);
    expect(delivery.headers['content-type']).toBe('application/json');
    expect(delivery.headers['x-signature-256']).toMatch(/^sha256=[0-9a-f]{64}$/);
    const event = JSON.parse(delivery.body);
    expect(delivery.headers['x-webhook-id']).toBe(event.id);
    expect(event).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      type: 'detection.anomalous',
      time: expect.any(String),
      requestId: res.headers['x-request-id'],
      detectionId: result.detectionId, // the record a receiver can send feedback on
      category: 'metal plate',
      method: result.method,
      score: result.score,
      threshold: 0,
      summary: result.summary,
      regions: result.regions,
      image: { width: 96, height: 64 },
      model: { id: result.model.id, generatedRandomModel: true },
    });
    expect(Math.abs(Date.parse(event.time) - Date.now())).toBeLessThan(10_000);
    expect(event.time).toBe(record!.time.toISOString()); // the detection's time, as recorded
    // A changed body or a stale timestamp does not verify.
    const ts = Number(delivery.headers['x-webhook-timestamp']);
    expect(verifyWebhook(SECRET, { signature: delivery.headers['x-signature-256'] as string, timestamp: String(ts), body: delivery.body.replace('metal', 'wood') })).toBe(false);
    const old = ts - 3600;
    expect(verifyWebhook(SECRET, { signature: signWebhook(SECRET, old, delivery.body), timestamp: String(old), body: delivery.body })).toBe(false);
    expect(verifyWebhook('another-secret-0000', { signature: delivery.headers['x-signature-256'] as string, timestamp: String(ts), body: delivery.body })).toBe(false);
  });

  it('sends nothing for a normal detection', async () => {
    const { receiver, app, store } = await setUp([]);
    const res = await detect(app, 1);
    expect(res.json().isAnomalous).toBe(false);
    await new Promise((r) => setTimeout(r, 300));
    expect(receiver.received).toEqual([]);
    expect((await store.outboxStats()).pending).toBe(0);
  });

  it('retries with backoff: a receiver that fails twice then succeeds gets the event once', async () => {
    const { receiver, app, metrics, logs } = await setUp([500, 503]);
    expect((await detect(app, 0)).statusCode).toBe(200);
    await receiver.until(3);
    await new Promise((r) => setTimeout(r, 200));
    expect(receiver.received).toHaveLength(3);
    const ids = receiver.events().map((e) => e.id);
    expect(new Set(ids).size).toBe(1); // the same event each time, for the receiver to deduplicate
    expect(receiver.received.every((d) => d.valid)).toBe(true);
    await until('the delivery counted', async () => (await metric(metrics, 'webhook_deliveries_total{outcome="delivered"}')) === 1);
    expect(await metric(metrics, 'webhook_delivery_attempts_total{result="error"}')).toBe(2);
    expect(await metric(metrics, 'webhook_delivery_attempts_total{result="ok"}')).toBe(1);
    const retries = logs.lines.filter((l) => l.msg === 'webhook delivery attempt failed; will retry');
    expect(retries.map((l) => l.reason)).toEqual(['HTTP 500', 'HTTP 503']);
    expect(retries.every((l) => l.level === LEVEL.warn && Number(l.retryInMs) >= 10)).toBe(true);
    expect(retries.map((l) => l.attempt)).toEqual([1, 2]); // the count lives in the store
    await until('the outbox empty', async () => (await metric(metrics, 'webhook_outbox_pending')) === 0);
  });

  it('never delays the API response: it is out while the receiver still holds the event', async () => {
    const { receiver, app } = await setUp([0], { timeoutMs: 10_000 });
    const started = performance.now();
    const res = await detect(app, 0);
    const took = performance.now() - started;
    expect(res.statusCode).toBe(200);
    await receiver.until(1);
    expect(took).toBeLessThan(5000);
    expect(receiver.received).toHaveLength(1); // and it never answers: the attempt is still open
  });

  it('gives up after WEBHOOK_MAX_ATTEMPTS with a log line at error and a count; 4xx is not retried', async () => {
    const { receiver, app, metrics, logs, store } = await setUp([500, 502], { maxAttempts: 2 });
    expect((await detect(app, 0)).statusCode).toBe(200);
    await receiver.until(2);
    for (let i = 0; i < 50 && (await metric(metrics, 'webhook_deliveries_total{outcome="failed"}')) === 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect(await metric(metrics, 'webhook_deliveries_total{outcome="failed"}')).toBe(1);
    expect(logs.lines.find((l) => l.msg === 'webhook delivery failed; event given up')).toMatchObject({ level: LEVEL.error, attempts: 2 });
    expect(await store.outboxStats()).toMatchObject({ pending: 0, gaveUp: 1 });
    // A refusal that will not change (4xx) is not retried.
    const refusing = await setUp([400]);
    expect((await detect(refusing.app, 0)).statusCode).toBe(200);
    await refusing.receiver.until(1);
    await new Promise((r) => setTimeout(r, 200));
    expect(refusing.receiver.received).toHaveLength(1);
    await until('the failure counted', async () => (await metric(refusing.metrics, 'webhook_deliveries_total{outcome="failed"}')) === 1);
  });

  it('WEBHOOK_INCLUDE_OVERLAY attaches the overlay PNG when the request made an image map', async () => {
    const { receiver, app } = await setUp([], { includeOverlay: true });
    const asked = (await detect(app, 0, 'overlay')).json();
    await detect(app, 0, 'png');
    await detect(app, 0, 'none');
    await receiver.until(3);
    const events = receiver.events();
    const byMap = (has: boolean) => events.filter((e) => Boolean(e.overlay) === has);
    expect(byMap(false)).toHaveLength(1); // map=none: nothing to draw without scoring again
    expect(events.some((e) => e.overlay?.data === asked.map.data)).toBe(true);
    for (const e of byMap(true)) {
      expect(e.overlay).toMatchObject({ mime: 'image/png', encoding: 'base64', width: 96, height: 64 });
      const meta = await sharp(Buffer.from(e.overlay.data, 'base64')).metadata();
      expect([meta.format, meta.width, meta.height]).toEqual(['png', 96, 64]);
    }
  });

  it('the event time is the detection time, not the (later) delivery time', async () => {
    const { receiver, app, store } = await setUp([500], { backoffMs: 600 });
    const result = (await detect(app, 0)).json();
    await receiver.until(2);
    const delivered = Date.now();
    const [first, second] = receiver.events();
    expect(second.id).toBe(first.id);
    expect(second.time).toBe(first.time);
    expect(second.time).toBe((await store.getDetection(result.detectionId))!.time.toISOString());
    expect(delivered - Date.parse(second.time)).toBeGreaterThanOrEqual(300); // sent after a backoff of 300+ ms
  });

  it('shutdown cuts open attempts after the grace and keeps the event: another app on the same data folder delivers it', async () => {
    const receiver = new Receiver([0]); // the first delivery hangs; later ones get 200
    await receiver.start();
    opened.push({ close: () => receiver.stop() });
    const first = await setUp([], { timeoutMs: 5000, leaseMs: 1500, shutdownGraceMs: 200 }, { receiver });
    expect((await detect(first.app, 0, 'none', 'before-restart')).statusCode).toBe(200);
    await receiver.until(1);
    const closing = performance.now();
    await first.app.close();
    expect(performance.now() - closing).toBeLessThan(2000);
    expect((await first.store.outboxStats()).pending).toBe(1); // not released, not lost
    await first.store.close();

    const second = await setUp([], {}, { receiver, dataDir: first.dataDir });
    await receiver.until(2, 10_000); // once the first app's lease has run out
    const [a, b] = receiver.events();
    expect(b.id).toBe(a.id); // a duplicate across the restart: the receiver deduplicates on the id
    expect(b.requestId).toBe('before-restart');
    expect(receiver.received[1].headers['x-webhook-id']).toBe(a.id);
    await until('the outbox empty', async () => (await second.store.outboxStats()).pending === 0);
  });

  it('a receiver that is down, then up, gets every event once', async () => {
    const { url, port } = await freePortUrl();
    const { app, metrics } = await setUp([], { maxAttempts: 50, backoffMs: 50 }, { url });
    for (let i = 0; i < 5; i++) expect((await detect(app, 0, 'none', `down-${i}`)).statusCode).toBe(200);
    await until('five failed attempts', async () => (await metric(metrics, 'webhook_delivery_attempts_total{result="error"}')) >= 5);
    expect(await metric(metrics, 'webhook_outbox_pending')).toBe(5);
    const receiver = new Receiver();
    await receiver.start(port);
    opened.push({ close: () => receiver.stop() });
    await receiver.until(5, 15_000);
    await until('the outbox empty', async () => (await metric(metrics, 'webhook_outbox_pending')) === 0);
    const ids = receiver.events().map((e) => e.id);
    expect(new Set(ids).size).toBe(5);
    expect(ids).toHaveLength(5); // no restart, so no duplicates
    expect(receiver.events().map((e) => e.requestId).sort()).toEqual(['down-0', 'down-1', 'down-2', 'down-3', 'down-4']);
  });

  it('WEBHOOK_OUTBOX_MAX_BYTES: the oldest undelivered events are dropped and counted in /metrics', async () => {
    const { url, port } = await freePortUrl();
    const { app, metrics } = await setUp([], { maxAttempts: 50, backoffMs: 100 }, { url, outboxMaxBytes: 2500 });
    for (let i = 0; i < 8; i++) expect((await detect(app, 0, 'none', `bound-${i}`)).statusCode).toBe(200);
    const pending = await metric(metrics, 'webhook_outbox_pending');
    const dropped = await metric(metrics, 'webhook_outbox_dropped_total');
    expect(pending).toBeGreaterThanOrEqual(1);
    expect(dropped).toBeGreaterThanOrEqual(1);
    expect(pending + dropped).toBe(8);
    expect(await metric(metrics, 'webhook_outbox_pending_bytes')).toBeLessThanOrEqual(2500);
    const receiver = new Receiver();
    await receiver.start(port);
    opened.push({ close: () => receiver.stop() });
    await receiver.until(pending, 15_000);
    // What is left are the newest: the oldest made room.
    const kept = Array.from({ length: pending }, (_, i) => `bound-${8 - pending + i}`);
    expect(receiver.events().map((e) => e.requestId).sort()).toEqual(kept.sort());
  });

  it('a WEBHOOK_URL without WEBHOOK_SECRET stops start-up', () => {
    expect(() => loadSettings({ WEBHOOK_URL: 'https://bot.example/hook' })).toThrow(/WEBHOOK_SECRET: required when WEBHOOK_URL is set/);
    expect(() => loadSettings({ WEBHOOK_URL: 'ftp://bot.example/hook', WEBHOOK_SECRET: SECRET })).toThrow(/WEBHOOK_URL="ftp:.*http/);
    const s = loadSettings({ WEBHOOK_URL: 'https://bot.example/hook', WEBHOOK_SECRET: SECRET, WEBHOOK_MAX_ATTEMPTS: '3' });
    expect([s.webhookUrl, s.webhookMaxAttempts, s.webhookIncludeOverlay, s.webhookOutboxMaxBytes]).toEqual(['https://bot.example/hook', 3, false, 256 * 1024 * 1024]);
  });
});
