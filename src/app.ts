// The Fastify application: plugins and routes around a detector. Kept apart from server.ts
// so tests build it with their own detector and inject requests without a socket.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import multipart from '@fastify/multipart';
import cors from '@fastify/cors';
import type { Detector } from './detection/types.ts';
import { SETTINGS, type Settings } from './settings.ts';
import { MethodRegistry } from './methods/registry.ts';
import type { CategoryProvider } from './categories/provider.ts';
import { categoryRoutes } from './routes/categories.ts';
import { detectionRoutes } from './routes/detections.ts';
import { ClipDetector } from './detection/clip-detector.ts';
import { DeferredDetector } from './detection/deferred-detector.ts';
import { ApiKeys, readApiKeys } from './auth/api-keys.ts';
import { registerAuth } from './auth/plugin.ts';
import { loggerOptions, registerAccessLog, type LogStream } from './observability/logger.ts';
import { ServiceMetrics } from './observability/metrics.ts';
import { WebhookDeliverer, type WebhookOptions } from './webhooks/sender.ts';
import { MqttDeliverer, type MqttOptions } from './webhooks/mqtt.ts';
import { OutboxEvents, type EventSource, type OutboxDeliverer } from './webhooks/outbox-deliverer.ts';
import type { Store } from './store/store.ts';
import { ConnectingStore } from './store/connecting-store.ts';
import { answerFrameworkError, clientErrorHandler, registerErrorHandling } from './routes/errors.ts';
import { registerOpenApi } from './routes/openapi.ts';
import { metricsRoutes, registerRequestMetrics } from './routes/metrics.ts';
import { detectRoutes } from './routes/detect.ts';
import { detectBatchRoutes } from './routes/detect-batch.ts';
import { healthRoutes } from './routes/health.ts';
import { mapRoutes } from './routes/maps.ts';
import { MapStore } from './routes/map-store.ts';
import { DEFAULT_MAP_URL_MAX_BYTES, DEFAULT_MAP_URL_TTL_MS } from './defaults.ts';
import { registerBodyTimeouts, type BodyTimeouts } from './routes/body-timeouts.ts';
import { DEFAULT_BODY_BYTES_IN_FLIGHT, registerBodyBudget } from './routes/body-budget.ts';
import { webPlugin } from './web/plugin.ts';
import { overloadGate } from './routes/overload-gate.ts';

export interface AppOptions {
  detector: Detector;
  defaultThreshold: number;
  maxBodyBytes: number;
  logLevel?: string;
  /** Where log lines go (default: stdout). */
  logStream?: LogStream;
  /** A detection not answered this long after its request arrived gets 504; 0 or absent = never. */
  requestTimeoutMs?: number;
  /** Bounds on receiving a body (default: 10 s without progress, 120 s in all). */
  bodyTimeouts?: BodyTimeouts;
  /** Request-body bytes held in memory across requests; past it bodies get 503 (MAX_BODY_BYTES_IN_FLIGHT). */
  maxBodyBytesInFlight?: number;
  /** Pause before a full queue's 503 in front of Fastify (REFUSAL_DELAY_MS; default 0 here, 2 ms from the settings). */
  refusalDelayMs?: number;
  /** Browser origins allowed to call the API (CORS_ORIGINS): '*' or a list; absent = no CORS. */
  corsOrigins?: '*' | string[];
  /** Keys that /v1/* and /metrics require; none = open. */
  apiKeys?: ApiKeys;
  /** Requests per window per API key (per client address without keys); absent or max 0 = no limit. */
  rateLimit?: { max: number; windowMs: number };
  /** Events for anomalous detections; absent = no webhooks. Needs `store` (the outbox) and `categories` (the records). */
  webhook?: WebhookOptions;
  /** Events for anomalous detections published to an MQTT broker too (or alone); same needs as `webhook`. */
  mqtt?: MqttOptions;
  /** The store whose outbox the webhook deliverer sends from (the categories' store). */
  store?: Store;
  metrics?: ServiceMetrics;
  /** The methods requests may name (default: the built-in ones). */
  registry?: MethodRegistry;
  /** Stored categories, references, calibration and detection records; absent: zero-shot only. */
  categories?: CategoryProvider;
  /** Map URLs (format=url): how long they last and the bytes of PNGs held (default: 5 min, 256 MiB). */
  mapUrls?: { ttlMs: number; maxBytes: number };
  /** Images per POST /v1/detect/batch (BATCH_MAX, default 64). */
  batchMax?: number;
  /** A request's headers must all arrive within this (HEADERS_TIMEOUT_MS, default 10 s). */
  headersTimeoutMs?: number;
  /** Total header pixels of one batch (MAX_BATCH_PIXELS, default 200 M). */
  maxBatchPixels?: number;
  /** Pixels of one image (MAX_PIXELS): in a batch, a larger image gets its own error entry. */
  maxImagePixels?: number;
  /** Folder of the built web page served at `/` (default web/dist; missing = a 503 page). */
  webRoot?: string;
}

/** The app as the settings describe it (reads API_KEYS_FILE unless the keys are given). */
export function appOptionsFromSettings(settings: Settings, detector: Detector, apiKeys = readApiKeys(settings)): AppOptions {
  return {
    detector,
    defaultThreshold: settings.threshold,
    maxBodyBytes: settings.maxBodyBytes,
    batchMax: settings.batchMax,
    maxBatchPixels: settings.maxBatchPixels,
    maxImagePixels: settings.maxPixels,
    headersTimeoutMs: settings.headersTimeoutMs,
    logLevel: settings.logLevel,
    requestTimeoutMs: settings.requestTimeoutMs,
    corsOrigins: settings.corsOrigins,
    bodyTimeouts: { idleMs: settings.bodyIdleTimeoutMs, totalMs: settings.bodyTimeoutMs },
    maxBodyBytesInFlight: settings.maxBodyBytesInFlight,
    refusalDelayMs: settings.refusalDelayMs,
    apiKeys,
    rateLimit: { max: settings.rateLimitMax, windowMs: settings.rateLimitWindowMs },
    mapUrls: { ttlMs: settings.mapUrlTtlMs, maxBytes: settings.mapUrlMaxBytes },
    webhook:
      settings.webhookUrl && settings.webhookSecret
        ? {
            url: settings.webhookUrl,
            secret: settings.webhookSecret,
            maxAttempts: settings.webhookMaxAttempts,
            backoffMs: settings.webhookBackoffMs,
            ...(settings.webhookLeaseMs ? { leaseMs: settings.webhookLeaseMs } : {}),
            timeoutMs: settings.webhookTimeoutMs,
            includeOverlay: settings.webhookIncludeOverlay,
            imageLimits: { maxPixels: settings.maxPixels, maxSide: settings.maxSide, iccConvert: settings.iccConvert },
          }
        : undefined,
    mqtt: settings.mqttUrl
      ? {
          url: settings.mqttUrl,
          topic: settings.mqttTopic,
          username: settings.mqttUsername,
          password: settings.mqttPassword,
          maxAttempts: settings.mqttMaxAttempts,
          backoffMs: settings.mqttBackoffMs,
          timeoutMs: settings.mqttTimeoutMs,
          includeOverlay: settings.webhookIncludeOverlay,
          imageLimits: { maxPixels: settings.maxPixels, maxSide: settings.maxSide, iccConvert: settings.iccConvert },
        }
      : undefined,
  };
}

/** The caller's x-request-id when it is a plausible id (it goes into every log line), else a fresh UUID. */
function requestId(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && /^[\w.:/-]{1,128}$/.test(given) ? given : crypto.randomUUID();
}

const DEFAULT_BODY_TIMEOUTS: BodyTimeouts = { idleMs: 10_000, totalMs: 120_000 };

export async function buildApp(opts: AppOptions): Promise<FastifyInstance> {
  const metrics = opts.metrics ?? new ServiceMetrics();
  const apiKeys = opts.apiKeys ?? new ApiKeys([]);
  // Refusals under overload are answered before Fastify (overload-gate.ts); the gate needs the
  // app's logger, so it is set once the app exists.
  let gate: ((req: IncomingMessage, res: ServerResponse) => boolean) | undefined;
  const app = Fastify({
    serverFactory: (handler, options) => {
      // Headers trickled in slowly held a socket for Node's 60 s (checked every 30 s): bounded
      // like a stalled body, and checked every second.
      const headersTimeout = opts.headersTimeoutMs ?? 10_000;
      const server = http.createServer({ ...(options.http ?? {}), connectionsCheckingInterval: Math.min(1000, headersTimeout) }, (req, res) => {
        // Once close() began (not listening), Fastify answers: it closes the connections.
        if (!(server.listening && gate?.(req, res))) handler(req, res);
      });
      // What Fastify does to the server it makes itself.
      server.keepAliveTimeout = Number(options.keepAliveTimeout);
      server.requestTimeout = Number(options.requestTimeout);
      server.setTimeout(Number(options.connectionTimeout));
      server.headersTimeout = headersTimeout;
      return server;
    },
    logger: loggerOptions(opts.logLevel, opts.logStream),
    bodyLimit: opts.maxBodyBytes,
    clientErrorHandler,
    // A path parameter is checked as it comes, percent-encoded: a 100-character category id of
    // non-Latin letters takes up to 1,200 characters there. The routes check the decoded length.
    routerOptions: { maxParamLength: 2048 },
    // The router's own refusals (a malformed %-escape, an over-long parameter) in the same JSON shape.
    frameworkErrors: answerFrameworkError,
    // One access line per request, written on response (registerAccessLog), not Fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    // Request ids let an operator follow one request through the logs (requestId).
    requestIdHeader: false,
    genReqId: requestId,
  });
  gate = overloadGate({
    isFull: () => opts.detector.admissionFull?.() ?? false,
    keys: apiKeys,
    cors: opts.corsOrigins !== undefined,
    requestId,
    log: () => app.log,
    metrics,
    delayMs: opts.refusalDelayMs ?? 0,
  });
  // Route schemas are documentation (the OpenAPI document); zod validates in the handlers,
  // where multipart fields and query parameters share one schema, and answers are plain JSON.
  app.setValidatorCompiler(() => () => true);
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });
  registerErrorHandling(app);
  registerAccessLog(app);
  registerBodyTimeouts(app, opts.bodyTimeouts ?? DEFAULT_BODY_TIMEOUTS);
  registerBodyBudget(app, opts.maxBodyBytesInFlight ?? DEFAULT_BODY_BYTES_IN_FLIGHT);
  closeConnectionsWhenClosing(app);
  registerRequestMetrics(app, metrics);
  watchInference(app, opts.detector, metrics);
  // Before the API key check: a browser's preflight carries no key.
  if (opts.corsOrigins) {
    await app.register(cors, { origin: opts.corsOrigins, exposedHeaders: ['x-request-id', 'retry-after'], allowedHeaders: ['authorization', 'x-api-key', 'content-type', 'x-request-id'] });
  }
  await registerAuth(app, { keys: apiKeys, rateLimitMax: opts.rateLimit?.max ?? 0, rateLimitWindowMs: opts.rateLimit?.windowMs ?? Number(SETTINGS.rateLimitWindowMs.default) });
  await registerOpenApi(app, { apiKeys: apiKeys.enabled });
  await app.register(multipart, { limits: { fileSize: opts.maxBodyBytes } });

  let webhooks: EventSource | undefined;
  if (opts.webhook || opts.mqtt) {
    // Events live in the store's outbox (durable, at-least-once), one row per sink; there is no in-memory queue.
    if (!opts.store || !opts.categories) throw new Error('webhooks and MQTT need the store (its outbox) and the category service (the detection records)');
    const store = opts.store;
    const deliverers: OutboxDeliverer[] = [];
    if (opts.webhook) deliverers.push(new WebhookDeliverer(store, opts.webhook, app.log.child({ component: 'webhooks' }), metrics));
    if (opts.mqtt) deliverers.push(new MqttDeliverer(store, opts.mqtt, app.log.child({ component: 'mqtt' }), metrics));
    // The overlay (WEBHOOK_INCLUDE_OVERLAY) is part of the event, so every sink gets the same one.
    const overlay = opts.webhook ?? opts.mqtt!;
    webhooks = new OutboxEvents(deliverers, { includeOverlay: overlay.includeOverlay ?? false, imageLimits: overlay.imageLimits }, app.log.child({ component: 'events' }));
    const unwatch = metrics.watchOutbox(() => store.outboxStats());
    let closed = false;
    // A store still connecting: the deliverers start once it is open, not polling it meanwhile.
    app.addHook('onReady', async () => {
      const start = () => deliverers.forEach((d) => d.start());
      if (store instanceof ConnectingStore) void store.whenOpen.then(() => closed || start());
      else start();
    });
    app.addHook('onClose', async () => {
      closed = true;
      unwatch();
      await Promise.all(deliverers.map((d) => d.close()));
    });
  }

  const maps = new MapStore(opts.mapUrls?.ttlMs ?? DEFAULT_MAP_URL_TTL_MS, opts.mapUrls?.maxBytes ?? DEFAULT_MAP_URL_MAX_BYTES);
  app.addHook('onClose', async () => maps.clear());
  watchStore(app, opts, metrics);
  await app.register(healthRoutes, { detector: opts.detector, store: opts.store, capabilities: ['detect', 'batch', 'image-responses', ...(opts.categories ? ['categories', 'feedback'] : [])] });
  await app.register(metricsRoutes, { metrics });
  await app.register(detectRoutes, {
    detector: opts.detector,
    defaultThreshold: opts.defaultThreshold,
    maxBodyBytes: opts.maxBodyBytes,
    requestTimeoutMs: opts.requestTimeoutMs,
    methods: opts.registry?.accepted(),
    metrics,
    webhooks,
    categories: opts.categories,
    maps,
  });
  await app.register(mapRoutes, { maps });
  await app.register(detectBatchRoutes, {
    detector: opts.detector,
    defaultThreshold: opts.defaultThreshold,
    maxBodyBytes: opts.maxBodyBytes,
    batchMax: opts.batchMax ?? 64,
    maxBatchPixels: opts.maxBatchPixels ?? 200_000_000,
    maxImagePixels: opts.maxImagePixels,
    requestTimeoutMs: opts.requestTimeoutMs,
    methods: opts.registry?.accepted(),
    metrics,
    webhooks,
    categories: opts.categories,
  });
  if (opts.categories) {
    const methods = opts.registry?.accepted() ?? new MethodRegistry().accepted();
    await app.register(categoryRoutes, { categories: opts.categories, maxBodyBytes: opts.maxBodyBytes, methods });
    await app.register(detectionRoutes, { categories: opts.categories, metrics });
  }
  await app.register(webPlugin, { root: opts.webRoot });
  return app;
}

/**
 * During close(), answers carry `Connection: close`: a keep-alive client whose request was in
 * flight when the shutdown began then lets go, and close() need not wait for it to go idle.
 */
function closeConnectionsWhenClosing(app: FastifyInstance): void {
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onSend', async (_request, reply) => {
    if (closing) reply.header('connection', 'close');
  });
}

/** Once the model is loaded: metrics read its pool and prompt cache, and worker restarts are logged. */
function watchInference(app: FastifyInstance, detector: Detector, metrics: ServiceMetrics): void {
  const unwatch: Array<() => void> = [];
  const loaded = detector instanceof DeferredDetector ? detector.loading : Promise.resolve(detector);
  loaded.then(
    (d) => {
      if (!(d instanceof ClipDetector)) return;
      const pool = d.runtime.pool;
      const logRestart = (reason: string) => app.log.warn({ reason }, 'inference worker replaced');
      pool.on('restart', logRestart);
      unwatch.push(metrics.watchInference({ pool, prompts: d.prompts }), () => pool.off('restart', logRestart));
    },
    () => {},
  );
  // The detector may outlive this app (tests build several apps on one).
  app.addHook('onClose', async () => unwatch.forEach((stop) => stop()));
}

/** The store's reachability as a metric, and zero-shot detections answered without a record logged and counted. */
function watchStore(app: FastifyInstance, opts: AppOptions, metrics: ServiceMetrics): void {
  const store = opts.store;
  if (store instanceof ConnectingStore) metrics.storeUp = () => (store.status().state === 'connected' ? 1 : 0);
  opts.categories?.loading.then(
    (service) =>
      service.onRecordSkipped((info) => {
        metrics.recordsSkipped.inc({ anomalous: String(info.anomalous) });
        const lost = info.eventLost ? '; its webhook event is lost' : '';
        app.log.warn({ component: 'store', category: info.category, anomalous: info.anomalous, eventLost: info.eventLost, reason: info.reason }, `zero-shot detection answered without a record: the store is unreachable${lost}`);
      }),
    () => {},
  );
}
