// The OpenAPI description of POST /v1/detect, generated from the same zod schemas that
// validate the request (detect-schema.ts) and describe the response (response-schemas.ts).
import { detectOptionsSchema, LIMITS } from './detect-schema.ts';
import { batchResponseSchema, detectResponseSchema, errorSchema, jsonSchema } from './response-schemas.ts';

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

/** The option fields, typed from the zod schema, each with what it means. */
function optionProperties(defaultThreshold: number, methods?: readonly string[], docs: Record<string, string> = OPTION_DOCS): Record<string, object> {
  const generated = jsonSchema(detectOptionsSchema(defaultThreshold, methods), 'input') as { properties: Record<string, object> };
  return Object.fromEntries(Object.entries(generated.properties).map(([name, schema]) => [name, { description: docs[name], ...schema }]));
}

export function detectRouteSchema(defaultThreshold: number, methods?: readonly string[]) {
  const options = { properties: optionProperties(defaultThreshold, methods) };
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
        // Each header as a JSON schema: @fastify/swagger wraps it into the Header Object's `schema` itself.
        headers: {
          'x-anomaly-score': { description: 'format=png: the score', type: 'string' },
          'x-anomaly-verdict': { description: 'format=png: anomalous or normal', type: 'string', enum: ['anomalous', 'normal'] },
          'x-anomaly-threshold': { description: 'format=png: the threshold', type: 'string' },
          'x-threshold-source': { description: 'format=png: request, category calibration or default', type: 'string' },
          'x-detection-id': { description: 'format=png: the stored record, when one is kept', type: 'string' },
          'x-region-threshold': { description: 'format=png: the level regions and contour were found at', type: 'string' },
          'x-calibrated': { description: "format=png: true when the verdict rests on the stored category's calibration", type: 'string', enum: ['true', 'false'] },
          'x-model-warning': { description: 'format=png with a generated random-weight model: the scores say nothing about defects', type: 'string' },
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

// The batch route takes the same fields; these say what differs.
const BATCH_OPTION_DOCS: Record<string, string> = {
  ...OPTION_DOCS,
  format: 'json only: every image\'s map is inline in its result (png and url are for POST /v1/detect: 400)',
  method:
    'dense-frequency (the default; images packed several per session run), winclip, or musc: the decodable images are scored against each other ' +
    '(MuSc; at least 5 with the stored category\'s references, else 422 naming the minimum; scores are batch-relative)',
};

/** POST /v1/detect/batch: several images of one category, one result per image in upload order. */
export function detectBatchRouteSchema(defaultThreshold: number, batchMax: number, methods?: readonly string[]) {
  return {
    summary: 'Score several images of one category (method=musc: against each other)',
    description:
      `Send multipart/form-data with the images as repeated file fields \`image\` (1 to ${batchMax}, BATCH_MAX) and the options of ` +
      'POST /v1/detect as text fields (no reference files). The answer has one entry per file in upload order: the /v1/detect result, ' +
      'or for a file that is empty, not an image, undecodable or too large, its own error with the status it would have got alone.',
    tags: ['detection'],
    body: {
      content: {
        'multipart/form-data': {
          schema: {
            type: 'object',
            properties: {
              image: { type: 'array', minItems: 1, maxItems: batchMax, items: binary('an image to score (repeat the field)') },
              ...optionProperties(defaultThreshold, methods, BATCH_OPTION_DOCS),
            },
            required: ['image', 'category'],
          },
        },
      },
    },
    response: {
      200: { description: 'One entry per uploaded file, in upload order', content: { 'application/json': { schema: jsonSchema(batchResponseSchema) } } },
      400: error('A missing, unknown or invalid field (the message names it), no image field, a file field other than image, format other than json'),
      401: error('No valid API key (only when API keys are configured)'),
      413: error('More than BATCH_MAX files, a file over MAX_BODY_BYTES, or the images\' header sizes together over MAX_BATCH_PIXELS'),
      415: error('Not multipart/form-data'),
      422: error('method=musc with fewer decodable images (and stored references) than its minimum of 5: the message names it'),
      429: error('Rate limit reached (Retry-After says when to come back)'),
      500: error('The inference worker failed; it has been replaced'),
      503: error('The inference queue is full or the model is loading (Retry-After)'),
      504: error('No answer within REQUEST_TIMEOUT_MS'),
    },
  };
}
