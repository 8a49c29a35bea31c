// One JSON error shape for every failure: {error, message}. The status and code come from the
// error itself (src/errors.ts, as Fastify's error handler reads `statusCode`); zod's and
// Fastify's own errors are translated here. Only the service's own faults (5xx) log as errors.
import type { FastifyError, FastifyInstance } from 'fastify';
import { ZodError } from 'zod';
import { BadRequestError, InternalError, ServiceError } from '../errors.ts';

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

/** Maps any thrown value to the error the client sees. */
export function toServiceError(err: unknown): ServiceError {
  if (err instanceof ServiceError) return err;
  if (err instanceof ZodError) return fromZod(err);
  const fe = err as FastifyError;
  if (typeof fe?.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    return new ServiceError(fe.statusCode, FASTIFY_CODES[fe.statusCode] ?? 'client_error', fe.message);
  }
  return new InternalError('An internal error occurred.');
}

export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err, request, reply) => {
    const e = toServiceError(err);
    if (e.statusCode >= 500) request.log.error({ err }, 'request failed');
    else request.log.info({ status: e.statusCode, error: e.code, reason: e.message }, 'request rejected');
    void reply.code(e.statusCode).headers(e.headers).send({ error: e.code, message: e.message });
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send({ error: 'not_found', message: `No route for ${request.method} ${request.url.split('?')[0]}` });
  });
}
