// One JSON error shape for every failure: {error, message}. Client mistakes map to 4xx;
// only the service's own faults are 5xx, and those are the only ones logged as errors.
import type { FastifyError, FastifyInstance } from 'fastify';
import { ZodError } from 'zod';
import { ImageDecodeError, ImageTooLargeError } from '../imaging/decode.ts';
import { JobTimeoutError, QueueFullError, WorkerFailedError } from '../clip/runtime/worker-pool.ts';

export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly error: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

export const badRequest = (message: string) => new HttpError(400, 'bad_request', message);

function fromZod(err: ZodError): HttpError {
  const parts = err.issues.map((i) => `${i.path.length ? i.path.join('.') : 'request'}: ${i.message}`);
  return badRequest(parts.join('; '));
}

/** Maps any thrown value to the HTTP error the client sees. */
export function toHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  if (err instanceof ZodError) return fromZod(err);
  if (err instanceof ImageTooLargeError) return new HttpError(413, 'image_too_large', err.message);
  if (err instanceof ImageDecodeError) return new HttpError(422, 'undecodable_image', err.message);
  if (err instanceof QueueFullError) {
    return new HttpError(503, 'overloaded', 'The service is busy; retry shortly.', { 'retry-after': '1' });
  }
  if (err instanceof JobTimeoutError) return new HttpError(504, 'timeout', 'The detection did not finish in time.');
  if (err instanceof WorkerFailedError) return new HttpError(500, 'inference_failed', 'The inference worker failed; it has been restarted. Retry the request.');
  const fe = err as FastifyError;
  if (typeof fe?.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    const code = fe.statusCode;
    const names: Record<number, string> = {
      400: 'bad_request',
      401: 'unauthorized',
      404: 'not_found',
      405: 'method_not_allowed',
      406: 'not_acceptable',
      408: 'request_timeout',
      413: 'payload_too_large',
      415: 'unsupported_media_type',
      429: 'rate_limited',
    };
    return new HttpError(code, names[code] ?? 'client_error', fe.message);
  }
  return new HttpError(500, 'internal_error', 'An internal error occurred.');
}

export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err, request, reply) => {
    const http = toHttpError(err);
    if (http.statusCode >= 500) request.log.error({ err }, 'request failed');
    else request.log.info({ status: http.statusCode, error: http.error, reason: http.message }, 'request rejected');
    void reply.code(http.statusCode).headers(http.headers).send({ error: http.error, message: http.message });
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send({ error: 'not_found', message: `No route for ${request.method} ${request.url.split('?')[0]}` });
  });
}
