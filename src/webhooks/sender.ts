// Webhooks: anomaly events POSTed to WEBHOOK_URL, signed at send time, from the store's
// outbox (webhook rows) through an OutboxDeliverer (outbox-deliverer.ts: leases, retries with
// backoff kept in the store, at-least-once with the event id as idempotency key).
import type { DetectResponse } from '../detection/types.ts';
import type { ServiceMetrics } from '../observability/metrics.ts';
import type { ClaimedEvent, EnqueueResult, OutboxEventInput, Store } from '../store/store.ts';
import { timeoutSignal } from '../util/timeout.ts';
import { withOverlayData, type StoredEvent } from './event.ts';
import { OutboxDeliverer, OutboxEvents, type Attempt, type DeliveryOptions, type EventSource, type Log, type Sink } from './outbox-deliverer.ts';
import { EVENT_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, signWebhook } from './signature.ts';

export type { Attempt, EventSource };

export interface WebhookOptions extends DeliveryOptions {
  url: string;
  secret: string;
  /** Time the receiver has to answer one attempt. */
  timeoutMs: number;
  includeOverlay: boolean;
  imageLimits?: { maxPixels?: number; maxSide?: number; iccConvert?: boolean };
}

/** The outbox sink name of webhook rows. */
export const WEBHOOK_SINK = 'webhook';

function webhookSink(opts: WebhookOptions, metrics?: ServiceMetrics): Sink {
  return {
    name: WEBHOOK_SINK,
    label: 'webhook',
    send(claimed: ClaimedEvent, signal: AbortSignal) {
      const body = JSON.stringify(withOverlayData(claimed.payload as StoredEvent, claimed.image));
      return postWebhook({ url: opts.url, secret: opts.secret, timeoutMs: opts.timeoutMs, signal }, claimed.id, body);
    },
    counted(what) {
      if ('attempt' in what) metrics?.webhookAttempts.inc({ result: what.attempt });
      else metrics?.webhookDeliveries.inc({ outcome: what.outcome });
    },
  };
}

/** The webhook deliverer; on its own (no MQTT) it is also the event source of the detection routes. */
export class WebhookDeliverer extends OutboxDeliverer implements EventSource {
  private readonly events: OutboxEvents;

  constructor(store: Store, opts: WebhookOptions, log: Log, metrics?: ServiceMetrics) {
    super(store, webhookSink(opts, metrics), opts, log);
    this.events = new OutboxEvents([this], opts, log);
  }

  event(response: DetectResponse, requestId: string, image: Buffer, time: Date, detectionId: string): Promise<OutboxEventInput> {
    return this.events.event(response, requestId, image, time, detectionId);
  }

  queued(result: EnqueueResult, requestId: string): void {
    this.events.queued(result, requestId);
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
