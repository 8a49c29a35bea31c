// Delivery from the store's outbox to one sink (webhook receiver, MQTT broker): at-least-once,
// with the event id as the receiver's idempotency key. Each sink has its own rows in the
// outbox (written in the transaction of the detection, so a crash or restart loses none); a
// deliverer claims its sink's due rows under a lease, sends them, and records each outcome in
// the store, the retry schedule included, so backoff goes on across restarts and replicas.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { DetectResponse } from '../detection/types.ts';
import type { ClaimedEvent, EnqueueResult, OutboxEventInput, Store } from '../store/store.ts';
import { backoffDelay, sleep } from '../util/retry.ts';
import { anomalyEvent, eventOverlay, storedEvent } from './event.ts';

export type Attempt = { ok: true } | { ok: false; retry: boolean; reason: string };

export interface Log {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** Where a deliverer sends: one attempt per call, ended by `signal` at shutdown. */
export interface Sink {
  /** The outbox rows it owns (their `sink` column). */
  readonly name: string;
  /** How log lines name it ("webhook", "MQTT"). */
  readonly label: string;
  send(event: ClaimedEvent, signal: AbortSignal): Promise<Attempt>;
  /** Counts an attempt and an outcome (metrics); optional. */
  counted?(what: { attempt: 'ok' | 'error' } | { outcome: 'delivered' | 'failed' }): void;
  /** Called once the deliverer is closed (a connection to end). */
  close?(): Promise<void>;
}

export interface DeliveryOptions {
  maxAttempts: number;
  /** First retry delay; doubled per attempt, then jittered. */
  backoffMs: number;
  /** How long one attempt may take (the lease is longer). */
  timeoutMs: number;
  /** At shutdown, how long in-flight attempts may go on before they are cut (default 5 s). */
  shutdownGraceMs?: number;
  /** Attempts in flight at once (default 4): enough for a slow receiver, few enough not to flood it. */
  concurrency?: number;
  /** How often the outbox is read for due events (default 1 s); a new event wakes it at once. */
  pollMs?: number;
  /** How long a claim is exclusive; past it another deliverer (or this one after a restart) takes the event. */
  leaseMs?: number;
}

const MAX_BACKOFF_MS = 5 * 60_000;

export class OutboxDeliverer {
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
  protected readonly stop = new AbortController();

  constructor(
    protected readonly store: Store,
    readonly sink: Sink,
    private readonly delivery: DeliveryOptions,
    protected readonly log: Log,
  ) {
    this.concurrency = Math.max(1, delivery.concurrency ?? 4);
    // Longer than an attempt can last, so a live deliverer never loses an event it is sending.
    this.leaseMs = delivery.leaseMs ?? delivery.timeoutMs + 10_000;
  }

  /** Starts polling the outbox (events left from before a restart go out now). */
  start(): void {
    this.timer = setInterval(() => this.wake(), this.delivery.pollMs ?? 1000);
    this.timer.unref();
    this.wake();
  }

  /** Events being sent by this process. */
  get active(): number {
    return this.inFlight.size;
  }

  /**
   * Stops claiming, lets open attempts finish for up to `graceMs`, then cuts them. Nothing is
   * released: unfinished events stay in the store and go out after their lease, or a restart.
   */
  async close(graceMs = this.delivery.shutdownGraceMs ?? 5000): Promise<void> {
    this.closing = true;
    clearInterval(this.timer);
    await this.polling;
    const grace = sleep(graceMs);
    await Promise.race([Promise.allSettled([...this.inFlight]), grace]);
    this.stop.abort();
    await Promise.allSettled([...this.inFlight]);
    await this.sink.close?.();
  }

  /** Claims due events for the free slots; one claim at a time, another right after if asked. */
  wake(): void {
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
      claimed = await this.store.claimEvents(this.owner, { limit: free, leaseMs: this.leaseMs, sink: this.sink.name });
    } catch (err) {
      this.log.warn({ err }, `${this.sink.label} outbox could not be read; trying again at the next poll`);
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
    const { label, name } = this.sink;
    const attempt = claimed.attempt + 1;
    const where = { eventId: claimed.id, requestId: (claimed.payload as { requestId?: string }).requestId, attempt };
    let result: Attempt;
    try {
      result = await this.sink.send(claimed, this.stop.signal);
    } catch (err) {
      result = { ok: false, retry: true, reason: (err as Error).message };
    }
    // Cut at shutdown: not a failure of the receiver; the event keeps its lease and count.
    if (!result.ok && this.stop.signal.aborted) return;
    this.sink.counted?.({ attempt: result.ok ? 'ok' : 'error' });
    try {
      if (result.ok) {
        await this.store.markDelivered(claimed.id, name);
        this.sink.counted?.({ outcome: 'delivered' });
        this.log.info(where, `${label} delivered`);
      } else if (result.retry && attempt < this.delivery.maxAttempts) {
        const delayMs = backoffDelay(attempt, { baseDelayMs: this.delivery.backoffMs, maxDelayMs: MAX_BACKOFF_MS, jitter: 'equal' });
        // The schedule lives in the store, so a restart keeps the backoff (and the count).
        await this.store.markFailed(claimed.id, this.owner, { attempt, nextAttemptAt: new Date(Date.now() + delayMs), error: result.reason }, name);
        this.log.warn({ ...where, reason: result.reason, retryInMs: Math.round(delayMs) }, `${label} delivery attempt failed; will retry`);
        setTimeout(() => this.wake(), delayMs + 1).unref();
      } else {
        await this.store.giveUp(claimed.id, this.owner, name);
        this.sink.counted?.({ outcome: 'failed' });
        this.log.error({ ...where, attempts: attempt, reason: result.reason }, `${label} delivery failed; event given up`);
      }
    } catch (err) {
      // The lease runs out and the event is tried again: at-least-once, never lost.
      this.log.warn({ ...where, err }, `${label} outcome could not be recorded; the event will be sent again`);
    }
  }
}

/** What records.ts needs to put an anomalous detection's event into the outbox. */
export interface EventSource {
  /** The outbox entry for the detection `detectionId` (its record's id), made at `time` (the event's `time`). */
  event(response: DetectResponse, requestId: string, image: Buffer, time: Date, detectionId: string): Promise<OutboxEventInput>;
  /** Called once the detection and its event are committed. */
  queued(result: EnqueueResult, requestId: string): void;
}

export interface EventOptions {
  /** Attach the overlay PNG (WEBHOOK_INCLUDE_OVERLAY). */
  includeOverlay: boolean;
  imageLimits?: { maxPixels?: number; maxSide?: number; iccConvert?: boolean };
}

/** Writes each anomalous detection's event once, with one outbox row for every deliverer's sink, and wakes them. */
export class OutboxEvents implements EventSource {
  constructor(
    private readonly deliverers: readonly OutboxDeliverer[],
    private readonly opts: EventOptions,
    private readonly log: Log,
  ) {}

  async event(response: DetectResponse, requestId: string, image: Buffer, time: Date, detectionId: string): Promise<OutboxEventInput> {
    let overlay;
    if (this.opts.includeOverlay) {
      try {
        overlay = await eventOverlay(response, image, this.opts.imageLimits);
      } catch (err) {
        this.log.warn({ requestId, err }, 'event overlay could not be rendered; sending the event without it');
      }
    }
    const event = anomalyEvent(response, requestId, detectionId, overlay, time);
    return { id: event.id, ...storedEvent(event), sinks: this.deliverers.map((d) => d.sink.name) };
  }

  queued(result: EnqueueResult, requestId: string): void {
    if (result.dropped > 0) {
      const what = result.queued ? 'oldest undelivered events dropped: outbox byte bound reached' : 'event dropped: larger than the outbox byte bound';
      this.log.warn({ requestId, dropped: result.dropped, ...(result.droppedEvents ? { droppedEvents: result.droppedEvents } : {}) }, what);
    }
    if (result.queued) for (const d of this.deliverers) d.wake();
  }
}
