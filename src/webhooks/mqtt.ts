// MQTT publishing for plant systems: each anomaly event is published (QoS 1) to a topic from
// MQTT_TOPIC, from the store's outbox (mqtt rows) through an OutboxDeliverer like the webhook,
// so it is durable and at-least-once: an event counts as delivered only once the broker's
// PUBACK arrived; while the broker is unreachable attempts fail and are retried with backoff,
// across restarts. The payload is the webhook's JSON event; its `id` is the idempotency key.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import mqtt, { type MqttClient } from 'mqtt';
import type { ServiceMetrics } from '../observability/metrics.ts';
import type { ClaimedEvent, Store } from '../store/store.ts';
import { withOverlayData, type AnomalyEvent, type StoredEvent } from './event.ts';
import { OutboxDeliverer, type Attempt, type DeliveryOptions, type Log, type Sink } from './outbox-deliverer.ts';

export interface MqttOptions extends DeliveryOptions {
  /** mqtt://host:port or mqtts://…; user:password in it are the credentials unless given below. */
  url: string;
  /** Topic template: {category} and {method} are replaced, escaped (mqttTopic). */
  topic: string;
  username?: string;
  password?: string;
  /** Time the broker has to acknowledge (PUBACK) one publish; also the connect timeout. */
  timeoutMs: number;
  /** Attach the overlay PNG to the event (WEBHOOK_INCLUDE_OVERLAY), when there is no webhook to say so. */
  includeOverlay?: boolean;
  imageLimits?: { maxPixels?: number; maxSide?: number; iccConvert?: boolean };
}

/** The outbox sink name of MQTT rows. */
export const MQTT_SINK = 'mqtt';

/**
 * One topic level from a value: `/` would split it into levels, `+` and `#` are wildcards no
 * topic name may hold, NUL is not allowed at all; these and `%` itself are percent-encoded
 * ("metal/plate #2" → "metal%2Fplate %232"), so distinct values stay distinct topics.
 */
export function escapeTopicLevel(value: string): string {
  return value.replace(/[%/+#\u0000]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
}

/** The topic of an event: the template with {category} and {method} (empty when none) filled in. */
export function mqttTopic(template: string, event: Pick<AnomalyEvent, 'category' | 'method'>): string {
  return template.replace(/\{(category|method)\}/g, (_, key: 'category' | 'method') => escapeTopicLevel(event[key] ?? ''));
}

class MqttSink implements Sink {
  readonly name = MQTT_SINK;
  readonly label = 'MQTT';
  private readonly client: MqttClient;
  private lastError?: string;

  constructor(
    private readonly opts: MqttOptions,
    log: Log,
    private readonly metrics?: ServiceMetrics,
  ) {
    // The outbox is the durable queue, so the client keeps none: clean session, and nothing is
    // published while disconnected (an attempt then fails and is retried from the store).
    this.client = mqtt.connect(opts.url, {
      clientId: `clip-anomaly-${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`,
      clean: true,
      reconnectPeriod: 1000,
      connectTimeout: opts.timeoutMs,
      ...mqttCredentials(opts),
    });
    let wasConnected = false;
    this.client.on('connect', () => {
      wasConnected = true;
      this.lastError = undefined;
      log.info({ broker: redact(opts.url) }, 'MQTT broker connected');
    });
    this.client.on('offline', () => {
      if (wasConnected) log.warn({ broker: redact(opts.url) }, 'MQTT broker connection lost; reconnecting');
      wasConnected = false;
    });
    // Without a listener an 'error' event would end the process; the attempts report it.
    this.client.on('error', (err) => {
      this.lastError = (err as Error & { code?: string }).code ?? err.message;
    });
  }

  send(claimed: ClaimedEvent, signal: AbortSignal): Promise<Attempt> {
    const event = withOverlayData(claimed.payload as StoredEvent, claimed.image);
    const topic = mqttTopic(this.opts.topic, event);
    if (!this.client.connected) {
      return Promise.resolve({ ok: false, retry: true, reason: `MQTT broker not connected${this.lastError ? ` (${this.lastError})` : ''}` });
    }
    return new Promise<Attempt>((resolve) => {
      let settled = false;
      const done = (attempt: Attempt) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        resolve(attempt);
      };
      // Our own timer (not AbortSignal.timeout(), see postWebhook): the attempt always ends.
      const timer = setTimeout(() => done({ ok: false, retry: true, reason: `no PUBACK within ${this.opts.timeoutMs} ms` }), this.opts.timeoutMs);
      const onAbort = () => done({ ok: false, retry: true, reason: 'shutting down' });
      signal.addEventListener('abort', onAbort, { once: true });
      this.client.publish(topic, JSON.stringify(event), { qos: 1 }, (err) => done(err ? { ok: false, retry: true, reason: err.message } : { ok: true }));
    });
  }

  counted(what: { attempt: 'ok' | 'error' } | { outcome: 'delivered' | 'failed' }): void {
    if ('attempt' in what) this.metrics?.mqttAttempts.inc({ result: what.attempt });
    else this.metrics?.mqttDeliveries.inc({ outcome: what.outcome });
  }

  async close(): Promise<void> {
    await this.client.endAsync(true);
  }
}

/**
 * MQTT_USERNAME / MQTT_PASSWORD win over the user and password in the URL (mqtt.js would let
 * the URL's win): given either, both are passed and the URL's `auth` is cleared.
 */
export function mqttCredentials(opts: Pick<MqttOptions, 'url' | 'username' | 'password'>): { username?: string; password?: string; auth?: undefined } {
  if (opts.username === undefined && opts.password === undefined) return {};
  const u = new URL(opts.url);
  const username = opts.username ?? (u.username ? decodeURIComponent(u.username) : undefined);
  const password = opts.password ?? (u.password ? decodeURIComponent(u.password) : undefined);
  return { auth: undefined, ...(username !== undefined ? { username } : {}), ...(password !== undefined ? { password } : {}) };
}

/** The URL without its password, for logs. */
function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparsable URL)';
  }
}

export class MqttDeliverer extends OutboxDeliverer {
  constructor(store: Store, opts: MqttOptions, log: Log, metrics?: ServiceMetrics) {
    super(store, new MqttSink(opts, log, metrics), opts, log);
  }
}
