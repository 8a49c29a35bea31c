// POST /v1/detect/batch: several images of one category (repeated `image` file fields, at most
// BATCH_MAX) with the options of /v1/detect → one answer per image, in upload order. A bad
// image (empty, not an image, undecodable) gets its own error entry and the others are still
// scored; `method=musc` scores the decodable images against each other (src/methods/musc).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Detector, DetectResponse } from '../detection/types.ts';
import type { ServiceMetrics } from '../observability/metrics.ts';
import type { EventSource } from '../webhooks/sender.ts';
import { BadRequestError, ImageTooLargeError, ModelUnavailableError, queueFullError, ServiceError } from '../errors.ts';
import { refuseUnreadBody } from './unread-body.ts';
import { headerPixels } from '../imaging/decode.ts';
import type { CategoryProvider } from '../categories/provider.ts';
import { recordDetection } from '../categories/records.ts';
import { withStoredCategory } from '../categories/detect-context.ts';
import { detectOptionsSchema, LIMITS } from './detect-schema.ts';
import { detectBatchRouteSchema } from './detect-docs.ts';
import type { batchResponseSchema } from './response-schemas.ts';
import type { z } from 'zod';
import { withDeadline } from './deadline.ts';
import { checkImageBytes, readImageFiles, refuseQueryOptions } from './uploads.ts';

export interface DetectBatchRouteOptions {
  detector: Detector;
  defaultThreshold: number;
  /** Largest file. */
  maxBodyBytes: number;
  /** Images per request (BATCH_MAX); more: 413. */
  batchMax: number;
  /** Total pixels of a batch, read from the headers before decoding (MAX_BATCH_PIXELS); more: 413. */
  maxBatchPixels: number;
  /** Pixels of one image (MAX_PIXELS): a larger one gets its own 413 entry and does not count towards maxBatchPixels. */
  maxImagePixels?: number;
  methods?: readonly string[];
  requestTimeoutMs?: number;
  metrics?: ServiceMetrics;
  /** Where anomalous detections' events go (webhook and/or MQTT rows of the outbox). */
  webhooks?: EventSource;
  categories?: CategoryProvider;
}

interface BatchFile {
  bytes: Buffer;
  filename: string | null;
}

export type BatchEntry =
  | { index: number; filename: string | null; ok: true; result: DetectResponse }
  | { index: number; filename: string | null; ok: false; status: number; error: string; message: string };

/** The answer: one entry per file, in upload order. */
export interface BatchResponse {
  category: string;
  method: string;
  count: number;
  results: BatchEntry[];
}

// The documented schema (response-schemas.ts) and the type the route sends, tied both ways.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const documented: Same<z.infer<typeof batchResponseSchema>, BatchResponse> = true;
void documented;

async function readBatch(request: FastifyRequest, maxBytes: number, maxFiles: number): Promise<{ files: BatchFile[]; fields: Record<string, string[]> }> {
  const { files, fields } = await readImageFiles(request, {
    maxBytes,
    maxFiles,
    maxFields: 2 * LIMITS.promptCount + 8,
    tooManyMessage: `at most ${maxFiles} images per batch (BATCH_MAX)`,
    checkBytes: false, // a file that is no image gets its own error entry
  });
  return { files: files.map((f) => ({ bytes: f.bytes, filename: f.filename || null })), fields };
}

function errorEntry(index: number, filename: string | null, err: unknown): BatchEntry {
  if (!(err instanceof ServiceError)) throw err;
  // Every entry's message names its file, as the route's own checks do ("image 4 (zero.png): …").
  const what = `image ${index + 1}${filename ? ` (${filename})` : ''}`;
  const message = err.message.startsWith(what) ? err.message : `${what}: ${err.message}`;
  return { index, filename, ok: false, status: err.statusCode, error: err.code, message };
}

export async function detectBatchRoutes(app: FastifyInstance, opts: DetectBatchRouteOptions): Promise<void> {
  const schema = detectOptionsSchema(opts.defaultThreshold, opts.methods);

  // As /v1/detect: with the queue full, refused at the headers, before the files are read.
  const admit = async (request: FastifyRequest, reply: FastifyReply) => {
    if (opts.detector.admissionFull?.()) refuseUnreadBody(request, reply, queueFullError());
  };

  app.post('/v1/detect/batch', { schema: detectBatchRouteSchema(opts.defaultThreshold, opts.batchMax, opts.methods), onRequest: admit }, async (request, reply) => {
    const { files, fields } = await readBatch(request, opts.maxBodyBytes, opts.batchMax);
    refuseQueryOptions(request);
    const { options: parsed, format } = schema.parse(fields);
    // One JSON answer holds every image's result: a PNG body cannot, and map URLs would outlive most batches' use.
    if (format !== 'json') throw new BadRequestError(`format=${format} is for POST /v1/detect; a batch answers JSON with each result's map inline`);
    const detector = opts.detector;
    if (!detector.detectBatch) throw new ModelUnavailableError('this detector scores no batches');

    // Each file's own faults first: they become its entry, the others go on.
    const entries = new Array<BatchEntry>(files.length);
    const good: number[] = [];
    files.forEach((f, index) => {
      try {
        checkImageBytes(f.bytes, `image ${index + 1}${f.filename ? ` (${f.filename})` : ''}`);
        good.push(index);
      } catch (err) {
        entries[index] = errorEntry(index, f.filename, err);
      }
    });
    // Memory: the decoded pixels of the whole batch are bounded, from the headers, before any decoding.
    // An image over the per-image limit is refused on its own when it is decoded (its entry), so it is not counted.
    const perImage = opts.maxImagePixels ?? Infinity;
    const pixels = (await Promise.all(good.map((i) => headerPixels(files[i].bytes)))).reduce<number>((n, p) => n + (p !== null && p <= perImage ? p : 0), 0);
    if (pixels > opts.maxBatchPixels) {
      throw new ImageTooLargeError(`the images of this batch hold ${pixels} pixels together; the limit is ${opts.maxBatchPixels} (MAX_BATCH_PIXELS): send fewer or smaller images`);
    }

    const categories = opts.categories?.get();
    const { options, context } = await withStoredCategory(categories, parsed);
    const abort = new AbortController();
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished) abort.abort();
    });
    const remainingMs = opts.requestTimeoutMs ? Math.max(1, opts.requestTimeoutMs - reply.elapsedTime) : 0;
    const scored = await withDeadline(remainingMs, abort, (signal) => detector.detectBatch!(good.map((i) => files[i].bytes), options, signal));

    for (const [k, item] of scored.items.entries()) {
      const index = good[k];
      const { bytes, filename } = files[index];
      if (!item.ok) {
        entries[index] = errorEntry(index, filename, item.error);
        continue;
      }
      // The record and, for an anomaly, its webhook event in one transaction (the durable outbox).
      const webhook = opts.webhooks ? { source: opts.webhooks, requestId: request.id } : undefined;
      const result = categories ? await recordDetection(categories, item.result, context, options, bytes, webhook) : item.result;
      opts.metrics?.observeDetection(result.timingsMs);
      entries[index] = { index, filename, ok: true, result };
    }
    const answer: BatchResponse = { category: options.category, method: scored.method, count: files.length, results: entries };
    return answer;
  });
}
