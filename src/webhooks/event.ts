// The JSON event a ticketing bot receives for an anomalous detection: what was found, where,
// one sentence to post, and optionally the overlay PNG to attach.
import { randomUUID } from 'node:crypto';
import sharp from 'sharp';
import { decodeImage, type DecodeOptions } from '../imaging/decode.ts';
import { blendOverlay, encodeRgbPng } from '../imaging/heatmap.ts';
import type { DetectResponse, Region } from '../detection/types.ts';

export interface AnomalyEvent {
  id: string;
  type: 'detection.anomalous';
  /** ISO 8601 time of the detection. */
  time: string;
  /** The x-request-id of the API request, to find it in the logs. */
  requestId: string;
  /** The stored detection record: GET /v1/detections/{id}, and POST …/feedback to mark a false alarm from the ticket. */
  detectionId: string;
  category: string;
  method?: string;
  score: number;
  threshold: number;
  summary: string;
  regions: Region[];
  image: { width: number; height: number };
  model: { id: string; generatedRandomModel: boolean };
  overlay?: { mime: 'image/png'; encoding: 'base64'; width: number; height: number; data: string };
}

/** `time`: when the detection was made; a delivery hours later still says when it happened. */
export function anomalyEvent(response: DetectResponse, requestId: string, detectionId: string, overlay?: AnomalyEvent['overlay'], time = new Date()): AnomalyEvent {
  return {
    id: randomUUID(),
    type: 'detection.anomalous',
    time: time.toISOString(),
    requestId,
    detectionId,
    category: response.category,
    ...(response.method ? { method: response.method } : {}),
    score: response.score,
    threshold: response.threshold,
    summary: response.summary,
    regions: response.regions,
    image: response.image,
    model: { id: response.model.id, generatedRandomModel: response.model.generatedRandomModel },
    ...(overlay ? { overlay } : {}),
  };
}

/**
 * The overlay PNG for the event, from what the request already produced: the overlay itself,
 * or the heatmap blended (half and half, with map=overlay's blendOverlay) over the image. Grid
 * and no map give none: there is no image-size map to draw without scoring again.
 */
export async function eventOverlay(
  response: DetectResponse,
  imageBytes: Buffer,
  limits: DecodeOptions = {},
): Promise<AnomalyEvent['overlay']> {
  const map = response.map;
  // Webhooks see the response before a format=url answer swaps the data for a URL.
  if (!map || map.type === 'grid' || !('data' in map)) return undefined;
  const png = (data: string) => ({ mime: 'image/png' as const, encoding: 'base64' as const, width: map.width, height: map.height, data });
  if (map.type === 'overlay') return png(map.data);
  const image = await decodeImage(imageBytes, limits);
  const heat = await sharp(Buffer.from(map.data, 'base64')).removeAlpha().raw().toBuffer();
  if (heat.length !== image.rgb.length) return undefined;
  const out = await encodeRgbPng(await blendInSlices(heat, image.rgb), image.width, image.height);
  return png(out.toString('base64'));
}

/** Bytes blended between two turns of the event loop (this runs on the HTTP thread): ~2 ms each. */
const BLEND_SLICE = 1 << 20;

/** blendOverlay at one half, a slice at a time, so a 49-megapixel image never holds the HTTP thread for long. */
export async function blendInSlices(heat: Uint8Array, image: Uint8Array): Promise<Buffer> {
  if (heat.length !== image.length) throw new RangeError(`heatmap has ${heat.length} bytes but the image ${image.length}`);
  const out = Buffer.allocUnsafe(heat.length);
  for (let at = 0; at < heat.length; at += BLEND_SLICE) {
    const end = Math.min(heat.length, at + BLEND_SLICE);
    blendOverlay(heat.subarray(at, end), image.subarray(at, end), 0.5, out.subarray(at, end));
    if (end < heat.length) await new Promise((resolve) => setImmediate(resolve));
  }
  return out;
}

/**
 * The event as the outbox keeps it: without the overlay's base64 data, whose PNG is stored once
 * as a blob beside it (by hash) and put back at send time by withOverlayData.
 */
export type StoredEvent = Omit<AnomalyEvent, 'overlay'> & { overlay?: Omit<NonNullable<AnomalyEvent['overlay']>, 'data'> };

export function storedEvent(event: AnomalyEvent): { payload: StoredEvent; image?: Buffer } {
  if (!event.overlay) return { payload: event };
  const { data, ...overlay } = event.overlay;
  return { payload: { ...event, overlay }, image: Buffer.from(data, 'base64') };
}

/** The event to send: the stored one with the overlay PNG (when it has one) as base64 again. */
export function withOverlayData(stored: StoredEvent, image: Buffer | null): AnomalyEvent {
  const { overlay, ...rest } = stored;
  if (!overlay || !image) return rest;
  return { ...rest, overlay: { ...overlay, data: image.toString('base64') } };
}
