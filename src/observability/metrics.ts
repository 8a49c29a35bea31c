// The service's Prometheus metrics (prom-client) in one registry per app, so several apps in
// one process (tests) never share or clash. The HTTP layer, the detector's timings, the worker
// pool, the prompt cache, the webhook deliverer and the store's outbox feed it; GET /metrics renders it.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { EventEmitter } from 'node:events';

/** What the metrics read from the inference side: the worker pool and the prompt cache. */
export interface InferenceInternals {
  pool: EventEmitter & { readonly queued: number; readonly running: number };
  prompts: { stats(): { hits: number; misses: number; size: number } };
}

/** What the metrics read from the store's webhook outbox at scrape time. */
export interface OutboxReading {
  pending: number;
  pendingBytes: number;
  dropped: number;
}

const SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export class ServiceMetrics {
  readonly registry = new Registry();
  private inference?: InferenceInternals;
  private outbox?: () => Promise<OutboxReading>;
  /** One store read per scrape, shared by the three outbox series; the last one if it fails. */
  private outboxRead?: { at: number; value: Promise<OutboxReading> };
  private outboxLast: OutboxReading = { pending: 0, pendingBytes: 0, dropped: 0 };

  readonly httpRequests = new Counter({
    name: 'http_requests_total',
    help: 'HTTP requests by method, route and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [this.registry],
  });

  readonly httpDuration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request latency by method, route and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: SECONDS,
    registers: [this.registry],
  });

  readonly detectionStage = new Histogram({
    name: 'detection_stage_duration_seconds',
    help: 'Time per detection stage (decode, encode, score, render, total) of successful detections',
    labelNames: ['stage'] as const,
    buckets: SECONDS,
    registers: [this.registry],
  });

  readonly workerRestarts = new Counter({
    name: 'inference_worker_restarts_total',
    help: 'Inference workers replaced after a crash or a hung job',
    registers: [this.registry],
  });

  readonly feedback = new Counter({
    name: 'detection_feedback_total',
    help: 'Feedback on detections by category (stored id, or "zero-shot") and label (normal, anomalous)',
    labelNames: ['category', 'label'] as const,
    registers: [this.registry],
  });

  readonly webhookDeliveries = new Counter({
    name: 'webhook_deliveries_total',
    help: 'Webhook events by outcome: delivered, failed (attempts exhausted or refused); drops are webhook_outbox_dropped_total',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  readonly recordsSkipped = new Counter({
    name: 'detection_records_skipped_total',
    help: 'Zero-shot detections answered without a record (and, when anomalous, without a webhook event) because the store was unreachable',
    labelNames: ['anomalous'] as const,
    registers: [this.registry],
  });

  /** 1 while the last store call reached the database, 0 while it is unreachable (read at scrape time). */
  storeUp?: () => number;

  readonly webhookAttempts = new Counter({
    name: 'webhook_delivery_attempts_total',
    help: 'Webhook POST attempts by result (ok, error)',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly mqttDeliveries = new Counter({
    name: 'mqtt_deliveries_total',
    help: 'MQTT events by outcome: delivered (PUBACK received), failed (attempts exhausted)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  readonly mqttAttempts = new Counter({
    name: 'mqtt_publish_attempts_total',
    help: 'MQTT QoS 1 publish attempts by result (ok, error)',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });


  constructor() {
    const metrics = this;
    collectDefaultMetrics({ register: this.registry });
    new Gauge({
      name: 'inference_queue_depth',
      help: 'Inference jobs waiting for a worker',
      registers: [this.registry],
      collect() {
        this.set(metrics.inference?.pool.queued ?? 0);
      },
    });
    new Gauge({
      name: 'store_up',
      help: 'Whether the store answered the last call (1) or could not be reached (0)',
      registers: [this.registry],
      collect() {
        this.set(metrics.storeUp?.() ?? 1);
      },
    });
    new Gauge({
      name: 'inference_jobs_running',
      help: 'Inference jobs running in workers',
      registers: [this.registry],
      collect() {
        this.set(metrics.inference?.pool.running ?? 0);
      },
    });
    // The outbox lives in the store (shared by replicas, kept across restarts): read at scrape time.
    new Counter({
      name: 'webhook_outbox_dropped_total',
      help: 'Undelivered outbox rows (webhook and MQTT) dropped by the outbox byte bound (WEBHOOK_OUTBOX_MAX_BYTES), oldest first',
      registers: [this.registry],
      async collect() {
        this.reset();
        this.inc((await metrics.readOutbox()).dropped);
      },
    });
    new Gauge({
      name: 'webhook_outbox_pending',
      help: 'Outbox rows (one per event and sink: webhook, MQTT) not yet delivered or given up',
      registers: [this.registry],
      async collect() {
        this.set((await metrics.readOutbox()).pending);
      },
    });
    new Gauge({
      name: 'webhook_outbox_pending_bytes',
      help: 'Bytes of the undelivered outbox rows, webhook and MQTT (payload and overlay image)',
      registers: [this.registry],
      async collect() {
        this.set((await metrics.readOutbox()).pendingBytes);
      },
    });
    // The cache keeps its own running totals; the counters mirror them at scrape time.
    new Counter({
      name: 'prompt_cache_hits_total',
      help: 'Class text embeddings served from the prompt cache',
      registers: [this.registry],
      collect() {
        this.reset();
        this.inc(metrics.inference?.prompts.stats().hits ?? 0);
      },
    });
    new Counter({
      name: 'prompt_cache_misses_total',
      help: 'Class text embeddings computed with the text tower',
      registers: [this.registry],
      collect() {
        this.reset();
        this.inc(metrics.inference?.prompts.stats().misses ?? 0);
      },
    });
    new Gauge({
      name: 'prompt_cache_entries',
      help: 'Class text embeddings held in the prompt cache',
      registers: [this.registry],
      collect() {
        this.set(metrics.inference?.prompts.stats().size ?? 0);
      },
    });
  }

  /** Starts reading the pool and the prompt cache of a loaded detector; returns the undo. */
  watchInference(inference: InferenceInternals): () => void {
    this.inference = inference;
    const countRestart = () => this.workerRestarts.inc();
    inference.pool.on('restart', countRestart);
    return () => inference.pool.off('restart', countRestart);
  }

  /** Starts reading the webhook outbox at scrape time; returns the undo. */
  watchOutbox(read: () => Promise<OutboxReading>): () => void {
    this.outbox = read;
    return () => {
      if (this.outbox === read) this.outbox = undefined;
    };
  }

  private readOutbox(): Promise<OutboxReading> {
    const read = this.outbox;
    if (!read) return Promise.resolve(this.outboxLast);
    const now = Date.now();
    if (!this.outboxRead || now - this.outboxRead.at > 100) {
      const value = read().then(
        (r) => (this.outboxLast = { pending: r.pending, pendingBytes: r.pendingBytes, dropped: r.dropped }),
        () => this.outboxLast,
      );
      this.outboxRead = { at: now, value };
    }
    return this.outboxRead.value;
  }

  observeRequest(method: string, route: string, status: number, seconds: number): void {
    const labels = { method, route, status: String(status) };
    this.httpRequests.inc(labels);
    this.httpDuration.observe(labels, seconds);
  }

  /** A successful detection's stage timings (milliseconds, as in the response's timingsMs). */
  observeDetection(timingsMs: Record<string, number>): void {
    for (const [stage, ms] of Object.entries(timingsMs)) this.detectionStage.observe({ stage }, ms / 1000);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }
}
