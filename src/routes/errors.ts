// One JSON error shape for every failure: {error, message}. The status and code come from the
// error itself (src/errors.ts, as Fastify's error handler reads `statusCode`); zod's and
// Fastify's own errors are translated here. Only the service's own faults (5xx) log as errors.
import type { FastifyError, FastifyInstance, FastifyRequest } from 'fastify';
import { ZodError } from 'zod';
import { BadRequestError, InternalError, ServiceError, UnsupportedMediaTypeError } from '../errors.ts';

function fromZod(err: ZodError): ServiceError {
  const parts = err.issues.map((i) => `${i.path.length ? i.path.join('.') : 'request'}: ${i.message}`);
  return new BadRequestError(parts.join('; '));
}

/** Codes for the 4xx errors Fastify and its plugins raise with a status but no code of ours. */
const FASTIFY_CODES: Record<number, string> = {
  400: 'bad_request',
  401: 'unauthorized',
  404: 'not_found',
  405: 'method_not_allowed',
  406: 'not_acceptable',
  408: 'request_timeout',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  429: 'rate_limited',
  431: 'headers_too_large',
};

/** What POST /v1/detect accepts, said whenever its body has the wrong type or none. */
export const DETECT_MEDIA_HINT = 'send multipart/form-data with a file field "image", or the raw image with Content-Type: image/png (or another image/* type)';

/** Fastify's 415 says only "Unsupported Media Type": this names what came and what to send. */
function mediaTypeError(request?: FastifyRequest): ServiceError {
  const given = request?.headers['content-type'];
  const what = given ? `Content-Type "${given.slice(0, 100)}" is not accepted here` : 'the request has a body but no Content-Type';
  const hint = request?.routeOptions.url?.startsWith('/v1/detect') ? DETECT_MEDIA_HINT : 'send multipart/form-data or application/json, as the API description says';
  return new UnsupportedMediaTypeError(`${what}; ${hint}`);
}

/** Maps any thrown value to the error the client sees. */
export function toServiceError(err: unknown, request?: FastifyRequest): ServiceError {
  if (err instanceof ServiceError) return err;
  if (err instanceof ZodError) return fromZod(err);
  const fe = err as FastifyError;
  if (fe?.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' || fe?.code === 'FST_ERR_CTP_EMPTY_TYPE') return mediaTypeError(request);
  if (typeof fe?.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    return new ServiceError(fe.statusCode, FASTIFY_CODES[fe.statusCode] ?? 'client_error', fe.message);
  }
  return new InternalError('An internal error occurred.');
}

export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err, request, reply) => {
    const e = toServiceError(err, request);
    if (e.statusCode >= 500) request.log.error({ err }, 'request failed');
    else request.log.info({ status: e.statusCode, error: e.code, reason: e.message }, 'request rejected');
    void reply.code(e.statusCode).headers(e.headers).send({ error: e.code, message: e.message });
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send({ error: 'not_found', message: `No route for ${request.method} ${request.url.split('?')[0]}` });
  });
}
