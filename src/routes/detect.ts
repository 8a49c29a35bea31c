// POST /v1/detect: an image plus its category → anomaly score, regions and map.
// Two request forms: multipart/form-data (file field `image`, text fields) or the raw image
// bytes with an image/* content type and the options as query parameters. The answer is JSON,
// the map PNG itself, or JSON with map URLs (detect-reply.ts).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Detector } from '../detection/types.ts';
import type { ServiceMetrics } from '../observability/metrics.ts';
import type { EventSource } from '../webhooks/sender.ts';
import { refuseUnreadBody } from './unread-body.ts';
import { PayloadTooLargeError, queueFullError, UnsupportedMediaTypeError, badRequest } from '../errors.ts';
import type { CategoryProvider } from '../categories/provider.ts';
import { recordDetection } from '../categories/records.ts';
import { withStoredCategory } from '../categories/detect-context.ts';
import { detectOptionsSchema, LIMITS } from './detect-schema.ts';
import { detectRouteSchema } from './detect-docs.ts';
import { withDeadline } from './deadline.ts';
import { checkImageBytes, refuseQueryOptions, rethrowMalformedMultipart } from './uploads.ts';
import { prefersPng, sendDetection } from './detect-reply.ts';
import type { MapStore } from './map-store.ts';
import { DETECT_MEDIA_HINT } from './errors.ts';

export interface DetectRouteOptions {
  detector: Detector;
  defaultThreshold: number;
  maxBodyBytes: number;
  /** Method names and aliases requests may use (the server's registry); default: the built-in ones. */
  methods?: readonly string[];
  /** Time from the request's arrival to its answer before a 504; 0 = none. */
  requestTimeoutMs?: number;
  metrics?: ServiceMetrics;
  /** Anomalous detections' events go into the store's outbox with their records. */
  /** Where anomalous detections' events go (webhook and/or MQTT rows of the outbox). */
  webhooks?: EventSource;
  /** Stored categories (references, calibration, records); absent: every request is zero-shot. */
  categories?: CategoryProvider;
  /** Where format=url answers keep their PNGs. */
  maps: MapStore;
}

const FIELD_LIMITS = {
  fields: 2 * LIMITS.promptCount + 8,
  fieldSize: 16 * 1024,
  // The image, the references, and one more so too many references get a clear 400.
  files: 2 + LIMITS.references,
};

interface Upload {
  image: Buffer;
  fields: Record<string, unknown>;
  /** Normal reference images (few-shot WinCLIP+). */
  references: Buffer[];
}

async function readMultipart(request: FastifyRequest, maxBytes: number): Promise<Upload> {
  const fields: Record<string, string[]> = {};
  let image: Buffer | undefined;
  const references: Buffer[] = [];
  const parts = request.parts({ limits: { ...FIELD_LIMITS, fileSize: maxBytes } });
  for await (const part of parts) {
    if (part.type === 'file') {
      if (part.fieldname === 'reference') {
        if (references.length === LIMITS.references) {
          part.file.resume();
          throw badRequest(`at most ${LIMITS.references} reference images (file fields "reference")`);
        }
        references.push(await part.toBuffer());
        continue;
      }
      if (part.fieldname !== 'image') {
        // Drain it so the stream can go on, then refuse the request.
        part.file.resume();
        throw badRequest(`unexpected file field "${part.fieldname}"; send the image in a file field named "image" (normal reference images in "reference")`);
      }
      if (image) {
        part.file.resume();
        throw new PayloadTooLargeError('more than one file field "image"; send one image per request');
      }
      image = await part.toBuffer();
    } else {
      if (part.fieldnameTruncated || part.valueTruncated) throw badRequest(`field "${part.fieldname}" is too long`);
      (fields[part.fieldname] ??= []).push(String(part.value));
    }
  }
  if (!image) throw badRequest('missing file field "image" (multipart/form-data with image=@file)');
  return { image, fields, references };
}

export async function detectRoutes(app: FastifyInstance, opts: DetectRouteOptions): Promise<void> {
  const schema = detectOptionsSchema(opts.defaultThreshold, opts.methods);

  // Raw image bodies: image/* and application/octet-stream arrive as one Buffer.
  // Parameters are allowed (`image/png; charset=binary` is a PNG all the same).
  app.addContentTypeParser(/^(image\/[\w.+-]+|application\/octet-stream)\s*(;.*)?$/i, { parseAs: 'buffer', bodyLimit: opts.maxBodyBytes }, (_req, body, done) =>
    done(null, body),
  );

  // A full queue refuses the request before its body is read: no bytes are taken in for a
  // detection that cannot run, and the client learns at once. The connection closes, as the
  // unread body is still on it (unread-body.ts). (Most such refusals never get here: overload-gate.ts answers
  // them before Fastify.)
  const admit = async (request: FastifyRequest, reply: FastifyReply) => {
    if (opts.detector.admissionFull?.()) refuseUnreadBody(request, reply, queueFullError());
  };

  app.post('/v1/detect', { schema: detectRouteSchema(opts.defaultThreshold, opts.methods), onRequest: admit }, async (request, reply) => {
    let upload: Upload;
    if (request.isMultipart()) {
      upload = await readMultipart(request, opts.maxBodyBytes).catch(rethrowMalformedMultipart);
      refuseQueryOptions(request);
    } else if (Buffer.isBuffer(request.body)) {
      upload = { image: request.body, fields: request.query as Record<string, unknown>, references: [] };
    } else {
      throw new UnsupportedMediaTypeError(DETECT_MEDIA_HINT);
    }
    // An Accept header preferring image/png asks for format=png; a format field says it outright.
    const fields = upload.fields.format === undefined && prefersPng(request.headers.accept) ? { ...upload.fields, format: 'png' } : upload.fields;
    const { options: parsed, format } = schema.parse(fields);
    checkImageBytes(upload.image);
    if (upload.references.length) {
      upload.references.forEach((r, i) => checkImageBytes(r, `reference ${i + 1}`));
      parsed.references = upload.references;
    }
    const categories = opts.categories?.get();
    const { options, context } = await withStoredCategory(categories, parsed);
    // The detection takes its place once its body is in, before decoding, and keeps it until it
    // is answered: the requests that arrive while it decodes are refused at their headers, not
    // after their own decoding. (Taken at the headers instead, stalled uploads would hold them.)
    const place = opts.detector.admit ? opts.detector.admit() : { release() {} };
    if (!place) throw queueFullError();
    reply.raw.once('close', place.release);
    const abort = new AbortController();
    // A client that hangs up while its job is still queued frees the queue slot.
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished) abort.abort();
    });
    const remainingMs = opts.requestTimeoutMs ? Math.max(1, opts.requestTimeoutMs - reply.elapsedTime) : 0;
    const scored = await withDeadline(remainingMs, abort, (signal) => opts.detector.detect(upload.image, options, signal));
    // The webhook event is committed with the record; the deliverer sends it in the background,
    // so the receiver never delays (or fails) this answer.
    const webhook = opts.webhooks ? { source: opts.webhooks, requestId: request.id } : undefined;
    const result = categories ? await recordDetection(categories, scored, context, options, upload.image, webhook) : scored;
    opts.metrics?.observeDetection(result.timingsMs);
    return sendDetection(reply, result, format, opts.maps);
  });
}
