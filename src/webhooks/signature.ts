// Webhook signatures: HMAC-SHA256 over "<timestamp>.<raw body>" with WEBHOOK_SECRET, sent as
// `X-Signature-256: sha256=<hex>` next to `X-Webhook-Timestamp` (Unix seconds). Signing the
// timestamp with the body lets a receiver refuse replays of old deliveries.
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'x-signature-256';
export const TIMESTAMP_HEADER = 'x-webhook-timestamp';
export const EVENT_ID_HEADER = 'x-webhook-id';

export function signWebhook(secret: string, timestamp: number, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/** The receiver's check: signature valid and timestamp within `toleranceSeconds` of now. */
export function verifyWebhook(
  secret: string,
  delivery: { signature: string | undefined; timestamp: string | undefined; body: string },
  toleranceSeconds = 300,
  nowMs = Date.now(),
): boolean {
  const ts = Number(delivery.timestamp);
  if (!delivery.signature || !Number.isInteger(ts) || Math.abs(nowMs / 1000 - ts) > toleranceSeconds) return false;
  const expected = Buffer.from(signWebhook(secret, ts, delivery.body));
  const given = Buffer.from(delivery.signature);
  return given.length === expected.length && timingSafeEqual(given, expected);
}
