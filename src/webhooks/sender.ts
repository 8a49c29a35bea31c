// Background delivery of anomaly events to WEBHOOK_URL. notify() only queues, so the API
// response never waits for (or fails with) a receiver; a bounded queue, a few deliveries at
// a time, retries with exponential backoff and jitter (util/retry.ts), every outcome logged
// and counted.
import type { DetectResponse } from '../detection/types.ts';
import type { ServiceMetrics } from '../observability/metrics.ts';
import { retry } from '../util/retry.ts';
import { timeoutSignal } from '../util/timeout.ts';
import { anomalyEvent, eventOverlay } from './event.ts';
import { EVENT_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, signWebhook } from './signature.ts';

export interface WebhookOptions {
  url: string;
  secret: string;
  maxAttempts: number;
  /** First retry delay; doubled per attempt, then jittered. */
  backoffMs: number;
  timeoutMs: number;
  /** Events waiting for delivery; more are dropped. */
  queueSize: number;
  includeOverlay: boolean;
  imageLimits?: { maxPixels?: number; maxSide?: number; iccConvert?: boolean };
  /** At shutdown, how long deliveries may go on before the rest are abandoned (default 5 s). */
  shutdownGraceMs?: number;
}

interface Log {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

interface Pending {
  response: DetectResponse;
  requestId: string;
  image: Buffer;
}

type Attempt = { ok: true } | { ok: false; retry: boolean; reason: string };

/** Deliveries in flight at once: enough for a slow receiver, few enough not to flood it. */
const CONCURRENCY = 4;
const MAX_BACKOFF_MS = 5 * 60_000;

export class WebhookSender {
  private readonly waiting: Pending[] = [];
  private active = 0;
  private closing = false;
  /** Aborted when the shutdown grace is over: ends attempts and backoff waits at once. */
  private readonly stop = new AbortController();
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly opts: WebhookOptions,
    private readonly log: Log,
    private readonly metrics?: ServiceMetrics,
  ) {}

  /** Queues an event when the detection is anomalous; returns at once. */
  notify(response: DetectResponse, context: { requestId: string; image: Buffer }): void {
    if (!response.isAnomalous) return;
    if (this.closing || this.waiting.length >= this.opts.queueSize) {
      this.metrics?.webhookDeliveries.inc({ outcome: 'dropped' });
      this.log.warn({ requestId: context.requestId, queued: this.waiting.length }, 'webhook event dropped: delivery queue full or shutting down');
      return;
    }
    this.waiting.push({ response, ...context });
    this.pump();
  }

  /** Events waiting or being delivered. */
  get pending(): number {
    return this.waiting.length + this.active;
  }

  /** Lets deliveries finish for up to `graceMs`, then abandons the rest (counted as dropped). */
  async close(graceMs = this.opts.shutdownGraceMs ?? 5000): Promise<void> {
    this.closing = true;
    const grace = new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref());
    await Promise.race([this.idle(), grace]);
    this.stop.abort();
    for (const left of this.waiting.splice(0)) {
      this.metrics?.webhookDeliveries.inc({ outcome: 'dropped' });
      this.log.warn({ requestId: left.requestId }, 'webhook event dropped at shutdown');
    }
    this.updateGauge();
    await this.idle();
  }

  private idle(): Promise<void> {
    return this.pending === 0 ? Promise.resolve() : new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private pump(): void {
    while (this.active < CONCURRENCY && this.waiting.length && !this.stop.signal.aborted) {
      const next = this.waiting.shift()!;
      this.active += 1;
      void this.deliver(next).finally(() => {
        this.active -= 1;
        this.pump();
        if (this.pending === 0) for (const wake of this.idleWaiters.splice(0)) wake();
      });
    }
    this.updateGauge();
  }

  private updateGauge(): void {
    this.metrics?.webhookQueue.set(this.pending);
  }

  private async deliver(job: Pending): Promise<void> {
    let overlay;
    if (this.opts.includeOverlay) {
      try {
        overlay = await eventOverlay(job.response, job.image, this.opts.imageLimits);
      } catch (err) {
        this.log.warn({ requestId: job.requestId, err }, 'webhook overlay could not be rendered; sending the event without it');
      }
    }
    const event = anomalyEvent(job.response, job.requestId, overlay);
    const body = JSON.stringify(event);
    const where = { eventId: event.id, requestId: job.requestId };
    let attempts = 0;
    try {
      await retry(
        async (attempt) => {
          attempts = attempt;
          const result = await this.attempt(event.id, body);
          this.metrics?.webhookAttempts.inc({ result: result.ok ? 'ok' : 'error' });
          if (!result.ok) throw new DeliveryFailure(result.retry, result.reason);
        },
        {
          attempts: this.opts.maxAttempts,
          baseDelayMs: this.opts.backoffMs,
          maxDelayMs: MAX_BACKOFF_MS,
          // Equal jitter: retries of many events spread out.
          jitter: 'equal',
          retryable: (err) => (err as DeliveryFailure).retry,
          signal: this.stop.signal,
          onRetry: ({ attempt, error, delayMs }) =>
            this.log.warn({ ...where, attempt, reason: (error as DeliveryFailure).reason, retryInMs: Math.round(delayMs) }, 'webhook delivery attempt failed; will retry'),
        },
      );
    } catch (err) {
      const reason = (err as DeliveryFailure).reason;
      if (this.stop.signal.aborted) {
        this.metrics?.webhookDeliveries.inc({ outcome: 'dropped' });
        this.log.warn({ ...where, attempt: attempts, reason }, 'webhook event dropped at shutdown');
      } else {
        this.metrics?.webhookDeliveries.inc({ outcome: 'failed' });
        this.log.error({ ...where, attempts, reason }, 'webhook delivery failed; event given up');
      }
      return;
    }
    this.metrics?.webhookDeliveries.inc({ outcome: 'delivered' });
    this.log.info({ ...where, attempt: attempts }, 'webhook delivered');
  }

  private async attempt(id: string, body: string): Promise<Attempt> {
    // A fresh timestamp per attempt: a retry an hour later still passes the receiver's replay window.
    const timestamp = Math.floor(Date.now() / 1000);
    const timeout = timeoutSignal(this.opts.timeoutMs, this.stop.signal);
    try {
      const res = await fetch(this.opts.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'clip-anomaly-service webhook',
          [EVENT_ID_HEADER]: id,
          [TIMESTAMP_HEADER]: String(timestamp),
          [SIGNATURE_HEADER]: signWebhook(this.opts.secret, timestamp, body),
        },
        body,
        redirect: 'manual',
        signal: timeout.signal,
      });
      await res.body?.cancel();
      if (res.ok) return { ok: true };
      // Receiver faults and throttling are worth retrying; other refusals will not change.
      const retry = res.status >= 500 || res.status === 408 || res.status === 429;
      return { ok: false, retry, reason: `HTTP ${res.status}` };
    } catch (err) {
      const e = err as Error & { cause?: { code?: string } };
      return { ok: false, retry: true, reason: e.cause?.code ?? e.message };
    } finally {
      timeout.clear();
    }
  }
}

/** A failed attempt, as retry() sees it. */
class DeliveryFailure extends Error {
  constructor(
    readonly retry: boolean,
    readonly reason: string,
  ) {
    super(reason);
  }
}
