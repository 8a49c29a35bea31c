// The OpenAPI description of POST /v1/detect, generated from the same zod schemas that
// validate the request (detect-schema.ts) and describe the response (response-schemas.ts).
import { detectOptionsSchema, LIMITS } from './detect-schema.ts';
import { detectResponseSchema, errorSchema, jsonSchema } from './response-schemas.ts';

const binary = (description: string) => ({ type: 'string', format: 'binary', description });

// What each option means; the types, limits and defaults come from the zod schema.
const OPTION_DOCS: Record<string, string> = {
  category: 'what the part is, e.g. "metal plate"',
  prompts: 'templated (WinCLIP states × templates for the category) or custom (your normal/abnormal phrases)',
  normal: 'with prompts=custom: phrases for a good part ({} becomes the category); repeat the field or send one JSON array',
  abnormal: 'with prompts=custom: phrases for a defective part',
  map: 'none, grid (low-resolution floats), png (heatmap at image size) or overlay (heatmap over the image with the threshold contour, region boxes and a colour legend); colours on a fixed scale: 0 blue, the threshold yellow, 1 red. Default png, overlay with format=png',
  format:
    'json (the map inline, base64), png (the body is the map PNG, the verdict in x-anomaly-* headers; also chosen by an Accept header preferring image/png; needs map=png or overlay) ' +
    'or url (JSON whose image maps are {url, expiresAt}: GET /v1/maps/<token> with the same key, for MAP_URL_TTL_MS)',
  threshold: "isAnomalous = score ≥ threshold; regions are the map above it. Absent: the stored category's calibrated threshold, else THRESHOLD (the response's thresholdSource says which)",
  metadata: 'a JSON object of strings (≤ 16 keys, ≤ 1 KB: station, lot, serial…), echoed in the response, stored with the record, sent in webhook events',
  branches: 'true adds per-part scores and maps (dense-frequency: the full, high and low branches)',
  method: 'dense-frequency (dense features, frequency branches, fusion; the default; `ours` is an alias) or winclip (anomalib WinCLIP)',
};
const error = (description: string) => ({ description, ...jsonSchema(errorSchema) });

export function detectRouteSchema(defaultThreshold: number, methods?: readonly string[]) {
  const generated = jsonSchema(detectOptionsSchema(defaultThreshold, methods), 'input') as { properties: Record<string, object> };
  const options = {
    properties: Object.fromEntries(Object.entries(generated.properties).map(([name, schema]) => [name, { description: OPTION_DOCS[name], ...schema }])),
  };
  return {
    summary: 'Score an image for anomalies',
    description:
      'Send the image as multipart/form-data (file field `image`, options as text fields) or as the raw body with an image/* ' +
      'content type (options as query parameters). Images are JPEG, PNG, WebP, TIFF, GIF, AVIF or BMP (HEIC: 415, convert first).',
    tags: ['detection'],
    querystring: {
      type: 'object',
      description: 'Options of the raw-body form (the multipart form sends them as fields).',
      properties: options.properties,
    },
    body: {
      content: {
        'multipart/form-data': {
          schema: {
            type: 'object',
            properties: {
              image: binary('the image to score (exactly one)'),
              reference: { type: 'array', maxItems: LIMITS.references, items: binary('a normal reference image (method=winclip only)') },
              ...options.properties,
            },
            required: ['image', 'category'],
          },
        },
        'image/*': { schema: binary('the image bytes; options in the query') },
        'application/octet-stream': { schema: binary('the image bytes; options in the query') },
      },
    },
    response: {
      200: {
        description: 'The anomaly score, verdict, regions, summary and map (JSON), or with format=png the map PNG with the verdict in headers',
        headers: {
          'x-anomaly-score': { description: 'format=png: the score', schema: { type: 'string' } },
          'x-anomaly-verdict': { description: 'format=png: anomalous or normal', schema: { type: 'string', enum: ['anomalous', 'normal'] } },
          'x-anomaly-threshold': { description: 'format=png: the threshold', schema: { type: 'string' } },
          'x-threshold-source': { description: 'format=png: request, category calibration or default', schema: { type: 'string' } },
          'x-detection-id': { description: 'format=png: the stored record, when one is kept', schema: { type: 'string' } },
        },
        content: {
          'application/json': { schema: jsonSchema(detectResponseSchema) },
          'image/png': { schema: binary('format=png (or Accept: image/png): the overlay (map=overlay, the default) or the heatmap (map=png)') },
        },
      },
      400: error('A missing, unknown or invalid field (the message names it), an empty image'),
      401: error('No valid API key (only when API keys are configured)'),
      413: error('Body over MAX_BODY_BYTES, too many files, image over MAX_PIXELS or MAX_SIDE; with format=url a map PNG over MAP_URL_MAX_BYTES'),
      415: error('Neither multipart nor an image type, or bytes that are no supported image'),
      422: error('An image that does not decode (truncated or damaged)'),
      429: error('Rate limit reached (Retry-After says when to come back)'),
      500: error('The inference worker failed; it has been replaced'),
      503: error('The inference queue is full or the model is loading (Retry-After)'),
      504: error('No answer within REQUEST_TIMEOUT_MS'),
    },
  };
}
