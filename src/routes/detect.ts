// POST /v1/detect: an image plus its category → anomaly score, regions and map.
// Two request forms: multipart/form-data (file field `image`, text fields) or the raw image
// bytes with an image/* content type and the options as query parameters.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Detector } from '../detection/types.ts';
import { sniffImageType } from '../clip/preprocess.ts';
import { HttpError, badRequest } from './errors.ts';
import { detectOptionsSchema, LIMITS } from './detect-schema.ts';

export interface DetectRouteOptions {
  detector: Detector;
  defaultThreshold: number;
  maxBodyBytes: number;
}

const FIELD_LIMITS = {
  fields: 2 * LIMITS.promptCount + 8,
  fieldSize: 16 * 1024,
  files: 1,
};

interface Upload {
  image: Buffer;
  fields: Record<string, unknown>;
}

async function readMultipart(request: FastifyRequest, maxBytes: number): Promise<Upload> {
  const fields: Record<string, string[]> = {};
  let image: Buffer | undefined;
  const parts = request.parts({ limits: { ...FIELD_LIMITS, fileSize: maxBytes } });
  for await (const part of parts) {
    if (part.type === 'file') {
      if (part.fieldname !== 'image') {
        // Drain it so the stream can go on, then refuse the request.
        part.file.resume();
        throw badRequest(`unexpected file field "${part.fieldname}"; send the image in a file field named "image"`);
      }
      image = await part.toBuffer();
    } else {
      if (part.fieldnameTruncated || part.valueTruncated) throw badRequest(`field "${part.fieldname}" is too long`);
      (fields[part.fieldname] ??= []).push(String(part.value));
    }
  }
  if (!image) throw badRequest('missing file field "image" (multipart/form-data with image=@file)');
  return { image, fields };
}

function checkImageBytes(image: Buffer): void {
  if (image.length === 0) throw badRequest('the image is empty (0 bytes)');
  if (!sniffImageType(image)) {
    throw new HttpError(415, 'unsupported_media_type', 'the upload is not a supported image (JPEG, PNG, WebP, TIFF, GIF or AVIF)');
  }
}

export async function detectRoutes(app: FastifyInstance, opts: DetectRouteOptions): Promise<void> {
  const schema = detectOptionsSchema(opts.defaultThreshold);

  // Raw image bodies: image/* and application/octet-stream arrive as one Buffer.
  app.addContentTypeParser(/^(image\/[\w.+-]+|application\/octet-stream)$/, { parseAs: 'buffer', bodyLimit: opts.maxBodyBytes }, (_req, body, done) =>
    done(null, body),
  );

  app.post('/v1/detect', async (request, reply) => {
    let upload: Upload;
    if (request.isMultipart()) {
      upload = await readMultipart(request, opts.maxBodyBytes);
    } else if (Buffer.isBuffer(request.body)) {
      upload = { image: request.body, fields: request.query as Record<string, unknown> };
    } else {
      throw new HttpError(
        415,
        'unsupported_media_type',
        'send multipart/form-data with a file field "image", or the raw image with Content-Type: image/png (or another image/* type)',
      );
    }
    const options = schema.parse(upload.fields);
    checkImageBytes(upload.image);
    const abort = new AbortController();
    // A client that hangs up while its job is still queued frees the queue slot.
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished) abort.abort();
    });
    return opts.detector.detect(upload.image, options, abort.signal);
  });
}
