// Delivery of anomaly events from the store's outbox: at-least-once, with the event id as the
// receiver's idempotency key. An event is written in the transaction of its detection record
// (categories/records.ts), so a crash or restart loses none; this deliverer claims due events
// under a lease, POSTs them (signed at send time), and records each outcome in the store, the
// retry schedule included, so backoff goes on across restarts and replicas.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { DetectResponse } from '../detection/types.ts';
import type { ServiceMetrics } from '../observability/metrics.ts';
import type { ClaimedEvent, EnqueueResult, OutboxEventInput, Store } from '../store/store.ts';
import { backoffDelay, sleep } from '../util/retry.ts';
import { timeoutSignal } from '../util/timeout.ts';
import { anomalyEvent, eventOverlay, storedEvent, withOverlayData, type StoredEvent } from './event.ts';
import { EVENT_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, signWebhook } from './signature.ts';

export interface WebhookOptions {
  url: string;
  secret: string;
  maxAttempts: number;
  /** First retry delay; doubled per attempt, then jittered. */
  backoffMs: number;
  timeoutMs: number;
  includeOverlay: boolean;
  imageLimits?: { maxPixels?: number; maxSide?: number; iccConvert?: boolean };
  /** At shutdown, how long in-flight attempts may go on before they are cut (default 5 s). */
  shutdownGraceMs?: number;
  /** Attempts in flight at once (default 4): enough for a slow receiver, few enough not to flood it. */
  concurrency?: number;
  /** How often the outbox is read for due events (default 1 s); a new event wakes it at once. */
  pollMs?: number;
  /** How long a claim is exclusive; past it another deliverer (or this one after a restart) takes the event. */
  leaseMs?: number;
}

interface Log {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export type Attempt = { ok: true } | { ok: false; retry: boolean; reason: string };

/** What records.ts needs to put an anomalous detection's event into the outbox. */
export interface EventSource {
  /** The outbox entry for a detection made at `time` (the event's `time`). */
  event(response: DetectResponse, requestId: string, image: Buffer, time: Date): Promise<OutboxEventInput>;
  /** Called once the detection and its event are committed. */
  queued(result: EnqueueResult, requestId: string): void;
}

const MAX_BACKOFF_MS = 5 * 60_000;

export class WebhookDeliverer implements EventSource {
  /** Who holds a lease: one name per deliverer, so a restarted process is a new owner. */
  private readonly owner = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly concurrency: number;
  private readonly leaseMs: number;
  private timer?: NodeJS.Timeout;
  private polling?: Promise<void>;
  private pollAgain = false;
  private closing = false;
  /** Aborted when the shutdown grace is over: ends the attempts still open. */
  private readonly stop = new AbortController();

  constructor(
    private readonly store: Store,
    private readonly opts: WebhookOptions,
    private readonly log: Log,
    private readonly metrics?: ServiceMetrics,
  ) {
    this.concurrency = Math.max(1, opts.concurrency ?? 4);
    // Longer than an attempt can last, so a live deliverer never loses an event it is sending.
    this.leaseMs = opts.leaseMs ?? opts.timeoutMs + 10_000;
  }

  /** Starts polling the outbox (events left from before a restart go out now). */
  start(): void {
    this.timer = setInterval(() => this.wake(), this.opts.pollMs ?? 1000);
    this.timer.unref();
    this.wake();
  }

  async event(response: DetectResponse, requestId: string, image: Buffer, time: Date): Promise<OutboxEventInput> {
    let overlay;
    if (this.opts.includeOverlay) {
      try {
        overlay = await eventOverlay(response, image, this.opts.imageLimits);
      } catch (err) {
        this.log.warn({ requestId, err }, 'webhook overlay could not be rendered; sending the event without it');
      }
    }
    const event = anomalyEvent(response, requestId, overlay, time);
    return { id: event.id, ...storedEvent(event) };
  }

  queued(result: EnqueueResult, requestId: string): void {
    if (result.dropped > 0) {
      const what = result.queued ? 'oldest undelivered webhook events dropped: outbox byte bound reached' : 'webhook event dropped: larger than the outbox byte bound';
      this.log.warn({ requestId, dropped: result.dropped }, what);
    }
    if (result.queued) this.wake();
  }

  /** Events being sent by this process. */
  get active(): number {
    return this.inFlight.size;
  }

  /**
   * Stops claiming, lets open attempts finish for up to `graceMs`, then cuts them. Nothing is
   * released: unfinished events stay in the store and go out after their lease, or a restart.
   */
  async close(graceMs = this.opts.shutdownGraceMs ?? 5000): Promise<void> {
    this.closing = true;
    clearInterval(this.timer);
    await this.polling;
    const grace = sleep(graceMs);
    await Promise.race([Promise.allSettled([...this.inFlight]), grace]);
    this.stop.abort();
    await Promise.allSettled([...this.inFlight]);
  }

  /** Claims due events for the free slots; one claim at a time, another right after if asked. */
  private wake(): void {
    if (this.closing) return;
    if (this.polling) {
      this.pollAgain = true;
      return;
    }
    this.polling = this.claim().finally(() => {
      this.polling = undefined;
      if (this.pollAgain) {
        this.pollAgain = false;
        this.wake();
      }
    });
  }

  private async claim(): Promise<void> {
    const free = this.concurrency - this.inFlight.size;
    if (free <= 0) return;
    let claimed: ClaimedEvent[];
    try {
      claimed = await this.store.claimEvents(this.owner, { limit: free, leaseMs: this.leaseMs });
    } catch (err) {
      this.log.warn({ err }, 'webhook outbox could not be read; trying again at the next poll');
      return;
    }
    // Claimed while closing: the leases run out and the next start sends them.
    if (this.closing) return;
    for (const event of claimed) {
      const delivery = this.deliver(event).finally(() => {
        this.inFlight.delete(delivery);
        this.wake();
      });
      this.inFlight.add(delivery);
    }
    if (claimed.length === free) this.pollAgain = true;
  }

  private async deliver(claimed: ClaimedEvent): Promise<void> {
    const stored = claimed.payload as StoredEvent;
    const body = JSON.stringify(withOverlayData(stored, claimed.image));
    const attempt = claimed.attempt + 1;
    const where = { eventId: claimed.id, requestId: stored.requestId, attempt };
    const result = await this.attempt(claimed.id, body);
    // Cut at shutdown: not a failure of the receiver; the event keeps its lease and count.
    if (!result.ok && this.stop.signal.aborted) return;
    this.metrics?.webhookAttempts.inc({ result: result.ok ? 'ok' : 'error' });
    try {
      if (result.ok) {
        await this.store.markDelivered(claimed.id);
        this.metrics?.webhookDeliveries.inc({ outcome: 'delivered' });
        this.log.info(where, 'webhook delivered');
      } else if (result.retry && attempt < this.opts.maxAttempts) {
        const delayMs = backoffDelay(attempt, { baseDelayMs: this.opts.backoffMs, maxDelayMs: MAX_BACKOFF_MS, jitter: 'equal' });
        // The schedule lives in the store, so a restart keeps the backoff (and the count).
        await this.store.markFailed(claimed.id, this.owner, { attempt, nextAttemptAt: new Date(Date.now() + delayMs), error: result.reason });
        this.log.warn({ ...where, reason: result.reason, retryInMs: Math.round(delayMs) }, 'webhook delivery attempt failed; will retry');
        setTimeout(() => this.wake(), delayMs + 1).unref();
      } else {
        await this.store.giveUp(claimed.id, this.owner);
        this.metrics?.webhookDeliveries.inc({ outcome: 'failed' });
        this.log.error({ ...where, attempts: attempt, reason: result.reason }, 'webhook delivery failed; event given up');
      }
    } catch (err) {
      // The lease runs out and the event is tried again: at-least-once, never lost.
      this.log.warn({ ...where, err }, 'webhook outcome could not be recorded; the event will be sent again');
    }
  }

  private attempt(id: string, body: string): Promise<Attempt> {
    return postWebhook({ url: this.opts.url, secret: this.opts.secret, timeoutMs: this.opts.timeoutMs, signal: this.stop.signal }, id, body);
  }
}

/**
 * One signed POST of `body`; it ends at `timeoutMs` (or when `signal` aborts) whatever the
 * receiver does. The timer is timeoutSignal's own setTimeout, not AbortSignal.timeout(), which
 * Node 20 may garbage-collect mid-attempt so the attempt hangs forever.
 */
export async function postWebhook(
  target: { url: string; secret: string; timeoutMs: number; signal?: AbortSignal },
  id: string,
  body: string,
): Promise<Attempt> {
  // A fresh timestamp per attempt: a retry an hour later still passes the receiver's replay window.
  const timestamp = Math.floor(Date.now() / 1000);
  const timeout = timeoutSignal(target.timeoutMs, target.signal);
  try {
    const res = await fetch(target.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'user-agent': 'clip-anomaly-service webhook',
        [EVENT_ID_HEADER]: id,
        [TIMESTAMP_HEADER]: String(timestamp),
        [SIGNATURE_HEADER]: signWebhook(target.secret, timestamp, body),
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
