// Multipart bodies that carry several images in repeated `image` file fields (references,
// calibration, batches), read with the same limits and errors as POST /v1/detect.
import type { FastifyRequest } from 'fastify';
import { BadRequestError, PayloadTooLargeError, ServiceError, UnsupportedMediaTypeError } from '../errors.ts';
import { sniffImageType } from '../imaging/decode.ts';
import type { UploadedImage } from '../categories/service.ts';

export interface ImageFiles {
  files: UploadedImage[];
  fields: Record<string, string[]>;
}

/** busboy's parse errors (a body cut short, a broken boundary) carry no status, but they are the client's. */
export function rethrowMalformedMultipart(err: unknown): never {
  if (err instanceof Error && !(err instanceof ServiceError) && typeof (err as { statusCode?: unknown }).statusCode !== 'number') {
    throw new BadRequestError(`the multipart body could not be read: ${err.message}`);
  }
  throw err;
}

/**
 * A request with a body (multipart, or JSON on calibrate) takes its options from the body only.
 * Query parameters beside them were ignored, so `?threshold=0.99` answered at the default
 * threshold: refused instead.
 */
export function refuseQueryOptions(request: FastifyRequest): void {
  const keys = Object.keys((request.query ?? {}) as Record<string, unknown>);
  if (!keys.length) return;
  throw new BadRequestError(
    `this request takes its options in its body (form fields, or JSON fields), not in the query string (got ${keys.map((k) => `?${k}`).join(', ')}): send them there, e.g. -F ${keys[0]}=…`,
  );
}

/**
 * The JSON body of a route that takes JSON (absent: {}). Another type of body (multipart, text,
 * image bytes) was read as no body at all and its fields silently ignored: refused with a 415.
 */
export function jsonBody(request: FastifyRequest): Record<string, unknown> {
  const body = request.body;
  const type = String(request.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  // A JSON string ("references") is parsed to a string too: that one gets the 400 below.
  if (request.isMultipart() || Buffer.isBuffer(body) || (typeof body === 'string' && type !== 'application/json')) {
    throw new UnsupportedMediaTypeError(`this route takes a JSON body: send it with Content-Type: application/json${type ? ` (got ${type})` : ''}`);
  }
  if (body === undefined) return {};
  // JSON, but null, a string, a number or an array: not the object of fields the route reads.
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new BadRequestError(`the JSON body must be an object of fields, e.g. {"name": "metal plate"}; got ${body === null ? 'null' : Array.isArray(body) ? 'an array' : typeof body}`);
  return body as Record<string, unknown>;
}

/** Refuses empty uploads and bytes that are no supported image, naming the file. */
export function checkImageBytes(image: Buffer, what = 'the image'): void {
  if (image.length === 0) throw new BadRequestError(`${what} is empty (0 bytes)`);
  if (!sniffImageType(image)) {
    throw new UnsupportedMediaTypeError(`${what === 'the image' ? 'the upload' : what} is not a supported image (JPEG, PNG, WebP, TIFF, GIF, AVIF or BMP)`);
  }
}

export interface ImageFilesLimits {
  maxBytes: number;
  maxFiles: number;
  /** Text fields allowed (default 16). */
  maxFields?: number;
  /** The 413 message past maxFiles (default: at most N images per request). */
  tooManyMessage?: string;
  /** Refuse the whole request for a file that is empty or no image (default true; a batch answers such a file in its own entry instead). */
  checkBytes?: boolean;
}

/** Every `image` file field (at most `maxFiles`) and the text fields of a multipart request. */
export async function readImageFiles(request: FastifyRequest, opts: ImageFilesLimits): Promise<ImageFiles> {
  if (!request.isMultipart()) throw new UnsupportedMediaTypeError('send multipart/form-data with one or more file fields "image"');
  const files: UploadedImage[] = [];
  const fields: Record<string, string[]> = {};
  try {
    for await (const part of request.parts({ limits: { files: opts.maxFiles + 1, fields: opts.maxFields ?? 16, fieldSize: 16 * 1024, fileSize: opts.maxBytes } })) {
      if (part.type === 'file') {
        if (part.fieldname !== 'image') {
          part.file.resume();
          throw new BadRequestError(`unexpected file field "${part.fieldname}"; send the images in file fields named "image"`);
        }
        if (files.length === opts.maxFiles) {
          part.file.resume();
          throw new PayloadTooLargeError(opts.tooManyMessage ?? `at most ${opts.maxFiles} images per request`);
        }
        const bytes = await part.toBuffer();
        if (opts.checkBytes !== false) checkImageBytes(bytes, `image ${files.length + 1}${part.filename ? ` (${part.filename})` : ''}`);
        files.push({ bytes, filename: part.filename });
      } else {
        if (part.fieldnameTruncated || part.valueTruncated) throw new BadRequestError(`field "${part.fieldname}" is too long`);
        (fields[part.fieldname] ??= []).push(String(part.value));
      }
    }
  } catch (err) {
    rethrowMalformedMultipart(err);
  }
  if (files.length === 0) throw new BadRequestError('no file field "image": send one or more images as image=@file');
  return { files, fields };
}
