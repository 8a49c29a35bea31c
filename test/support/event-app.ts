// An app over the tiny service's detector with a store of its own (categories, records, the
// outbox) and the given event sinks (webhook, MQTT), for the event-delivery tests; what it opens
// is pushed onto `opened` for the test to close. And a multipart detection to send it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.ts';
import { ServiceMetrics } from '../../src/observability/metrics.ts';
import { CategoryProvider } from '../../src/categories/provider.ts';
import { CategoryService, categoryServiceOptions } from '../../src/categories/service.ts';
import { openStore } from '../../src/store/open-store.ts';
import type { Store } from '../../src/store/store.ts';
import type { WebhookOptions } from '../../src/webhooks/sender.ts';
import type { MqttOptions } from '../../src/webhooks/mqtt.ts';
import { multipart, type TinyService } from './tiny-service.ts';
import { LogCapture } from './log-capture.ts';

export interface Closable {
  close(): Promise<unknown>;
}

export interface EventApp {
  app: FastifyInstance;
  store: Store;
  metrics: ServiceMetrics;
  logs: LogCapture;
  dataDir: string;
}

export async function startEventApp(
  svc: TinyService,
  opened: Closable[],
  opts: { dataDir?: string; outboxMaxBytes?: number; webhook?: WebhookOptions; mqtt?: MqttOptions },
): Promise<EventApp> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'events-'));
  if (!opts.dataDir) opened.push({ close: async () => rmSync(dataDir, { recursive: true, force: true }) });
  const store = await openStore({ dataDir, outboxMaxBytes: opts.outboxMaxBytes });
  const categories = CategoryProvider.of(new CategoryService(store, svc.detector, categoryServiceOptions(svc.settings)));
  const metrics = new ServiceMetrics();
  const logs = new LogCapture();
  const app = await buildApp({
    detector: svc.detector,
    defaultThreshold: 0.5,
    maxBodyBytes: 1 << 20,
    logLevel: 'info',
    logStream: logs,
    metrics,
    categories,
    store,
    ...(opts.webhook ? { webhook: opts.webhook } : {}),
    ...(opts.mqtt ? { mqtt: opts.mqtt } : {}),
  });
  // A test may close them itself (a restart); closing twice is harmless here.
  opened.push({ close: () => store.close().catch(() => {}) }, app);
  await app.ready(); // the deliverers start when the app is ready (listen() does it in the server)
  return { app, store, metrics, logs, dataDir };
}

/** POST /v1/detect of `png` as multipart, with the threshold that makes it anomalous or not. */
export function detectEvent(app: FastifyInstance, png: Buffer, threshold: number, opts: { category?: string; map?: string; requestId?: string } = {}) {
  const form = multipart([
    { name: 'image', value: png, filename: 'part.png', type: 'image/png' },
    { name: 'category', value: opts.category ?? 'metal plate' },
    { name: 'threshold', value: String(threshold) },
    { name: 'map', value: opts.map ?? 'none' },
  ]);
  const headers = { ...form.headers, ...(opts.requestId ? { 'x-request-id': opts.requestId } : {}) };
  return app.inject({ method: 'POST', url: '/v1/detect', payload: form.payload, headers });
}
