// The service's Prometheus metrics (prom-client) in one registry per app, so several apps in
// one process (tests) never share or clash. The HTTP layer, the detector's timings, the worker
// pool, the prompt cache and the webhook sender feed it; GET /metrics renders it.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { EventEmitter } from 'node:events';

/** What the metrics read from the inference side: the worker pool and the prompt cache. */
export interface InferenceInternals {
  pool: EventEmitter & { readonly queued: number; readonly running: number };
  prompts: { stats(): { hits: number; misses: number; size: number } };
}

const SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export class ServiceMetrics {
  readonly registry = new Registry();
  private inference?: InferenceInternals;

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
    help: 'Webhook events by outcome: delivered, failed (attempts exhausted or refused), dropped (queue full or shutdown)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  readonly webhookAttempts = new Counter({
    name: 'webhook_delivery_attempts_total',
    help: 'Webhook POST attempts by result (ok, error)',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly webhookQueue = new Gauge({
    name: 'webhook_queue_depth',
    help: 'Webhook events waiting or being delivered',
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
      name: 'inference_jobs_running',
      help: 'Inference jobs running in workers',
      registers: [this.registry],
      collect() {
        this.set(metrics.inference?.pool.running ?? 0);
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
