// How POST /v1/detect answers once it has a result: JSON (the map inline), the map PNG itself
// (format=png or an Accept header preferring image/png) with the verdict in headers, or JSON
// whose image maps are URLs into the map store (format=url).
import type { FastifyReply } from 'fastify';
import type { DetectResponse, MapPayload } from '../detection/types.ts';
import { InternalError, MapTooLargeError } from '../errors.ts';
import type { MapStore } from './map-store.ts';
import type { ResponseFormat } from './detect-schema.ts';

interface MediaRange {
  type: string;
  subtype: string;
  q: number;
}

function mediaRanges(accept: string): MediaRange[] {
  return accept.split(',').flatMap((part) => {
    const [range, ...params] = part.trim().toLowerCase().split(';');
    const [type, subtype] = range.trim().split('/');
    if (!type || !subtype) return [];
    const qParam = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    const q = qParam ? Number(qParam.slice(2)) : 1;
    return Number.isFinite(q) ? [{ type, subtype, q }] : [];
  });
}

/** The q an Accept header gives one media type: its most specific matching range's (RFC 9110 §12.5.1). */
function quality(ranges: MediaRange[], type: string, subtype: string): number {
  let best = -1;
  let q = 0;
  for (const r of ranges) {
    const specificity = r.type === type ? (r.subtype === subtype ? 2 : r.subtype === '*' ? 1 : -1) : r.type === '*' ? 0 : -1;
    if (specificity > best) [best, q] = [specificity, r.q];
  }
  return q;
}

/** Whether Accept prefers image/png to application/json; a tie (`*\/*`, both listed) stays JSON. */
export function prefersPng(accept: string | undefined): boolean {
  if (!accept) return false;
  const ranges = mediaRanges(accept);
  return quality(ranges, 'image', 'png') > quality(ranges, 'application', 'json');
}

/** The inline PNG of a rendered map (what the detector returns before any format is applied). */
function inlinePng(map: MapPayload | null | undefined): Buffer | undefined {
  return map && 'data' in map ? Buffer.from(map.data, 'base64') : undefined;
}

/** The answer in the format asked for; the caller returns what this returns. */
export function sendDetection(reply: FastifyReply, result: DetectResponse, format: ResponseFormat, maps: MapStore): DetectResponse | FastifyReply {
  if (format === 'json') return result;
  if (format === 'url') return withMapUrls(result, maps);
  const png = inlinePng(result.map);
  // The schema refuses map=none/grid with format=png, so a missing PNG is the method's fault.
  if (!png) throw new InternalError('the method produced no image-size map to send as PNG');
  reply.type('image/png');
  reply.header('x-anomaly-score', String(result.score));
  reply.header('x-anomaly-verdict', result.isAnomalous ? 'anomalous' : 'normal');
  reply.header('x-anomaly-threshold', String(result.threshold));
  if (result.thresholdSource) reply.header('x-threshold-source', result.thresholdSource);
  if (result.detectionId) reply.header('x-detection-id', result.detectionId);
  reply.header('x-region-threshold', String(result.regionThreshold));
  // Whether the verdict rests on the category's calibration (the JSON's `calibrated`; its reason, if not, is in the JSON only).
  if (result.calibrated !== undefined) reply.header('x-calibrated', String(result.calibrated));
  // The JSON answer's warning, where a PNG body has no room for it: the scores of a random model mean nothing.
  if (result.model.generatedRandomModel) reply.header('x-model-warning', 'generated model with random weights: the score and map say nothing about defects');
  return reply.send(png);
}

/** The result with every image map (the fused one and the branches') replaced by a URL into `maps`. */
export function withMapUrls(result: DetectResponse, maps: MapStore): DetectResponse {
  const toUrl = (map: MapPayload | null | undefined): MapPayload | null => {
    const png = inlinePng(map);
    if (!map || map.type === 'grid' || !png) return map ?? null;
    const stored = maps.put(png);
    if (!stored) {
      throw new MapTooLargeError(`the map PNG (${png.length} bytes) is larger than the map URL store (MAP_URL_MAX_BYTES = ${maps.maxBytes}); ask for format=png or format=json`);
    }
    return { type: map.type, width: map.width, height: map.height, url: `/v1/maps/${stored.token}`, expiresAt: new Date(stored.expiresAt).toISOString() };
  };
  const out: DetectResponse = { ...result, map: toUrl(result.map) };
  if (result.branches) {
    out.branches = Object.fromEntries(Object.entries(result.branches).map(([name, b]) => [name, b.map === undefined ? b : { ...b, map: toUrl(b.map) }]));
  }
  return out;
}
