// One JSON error shape for every failure: {error, message}. The status and code come from the
// error itself (src/errors.ts, as Fastify's error handler reads `statusCode`); zod's and
// Fastify's own errors are translated here. Only the service's own faults (5xx) log as errors.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { rawJsonAnswer } from './unread-body.ts';
import { ZodError } from 'zod';
import { BadRequestError, InternalError, ServiceError, UnsupportedMediaTypeError } from '../errors.ts';

function fromZod(err: ZodError): ServiceError {
  const parts = err.issues.map((i) => `${i.path.length ? i.path.join('.') : 'request'}: ${i.message}`);
  const e = new BadRequestError(parts.join('; '));
  // The fields by name, for a client that acts on them without parsing the message.
  const fields = [...new Set(err.issues.filter((i) => i.path.length).map((i) => i.path.join('.')))];
  if (fields.length) e.fields = fields;
  return e;
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
  const route = request?.routeOptions.url;
  const hint =
    route === '/v1/detect/batch'
      ? 'send multipart/form-data with one or more file fields "image"'
      : route?.startsWith('/v1/detect')
        ? DETECT_MEDIA_HINT
        : 'send multipart/form-data or application/json, as the API description says';
  return new UnsupportedMediaTypeError(`${what}; ${hint}`);
}

const mib = (bytes: number) => (bytes >= 1 << 20 ? `${+(bytes / (1 << 20)).toFixed(1)} MiB` : `${+(bytes / 1024).toFixed(1)} KiB`);

/** Maps any thrown value to the error the client sees. */
export function toServiceError(err: unknown, request?: FastifyRequest): ServiceError {
  if (err instanceof ServiceError) return err;
  if (err instanceof ZodError) return fromZod(err);
  const fe = err as FastifyError;
  if (fe?.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' || fe?.code === 'FST_ERR_CTP_EMPTY_TYPE') return mediaTypeError(request);
  // Fastify's and @fastify/multipart's "Request body is too large" / "request file too large" name no limit.
  if (fe?.code === 'FST_ERR_CTP_BODY_TOO_LARGE' || fe?.code === 'FST_REQ_FILE_TOO_LARGE') {
    const limit = request?.routeOptions.bodyLimit;
    const what = fe.code === 'FST_REQ_FILE_TOO_LARGE' ? 'a file of the request' : 'the request body';
    return new ServiceError(413, 'payload_too_large', `${what} is larger than ${limit ? `${limit} bytes (${mib(limit)})` : 'the limit'}, MAX_BODY_BYTES: send a smaller image`);
  }
  if (typeof fe?.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    return new ServiceError(fe.statusCode, FASTIFY_CODES[fe.statusCode] ?? 'client_error', fe.message);
  }
  return new InternalError('An internal error occurred.');
}

/** Fastify's `frameworkErrors`: the router's refusals, answered as every other error is. */
export function answerFrameworkError(err: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const message =
    err.code === 'FST_ERR_BAD_URL'
      ? 'the URL path holds a malformed %-escape (e.g. "%FF" alone, or "%" not followed by two hex digits): percent-encode it as UTF-8'
      : err.code === 'FST_ERR_MAX_PARAM_LENGTH'
        ? 'a path segment is too long (an id is at most 100 characters)'
        : err.message;
  sendError(request, reply, new BadRequestError(message));
}

/** Logs a failure at its level (4xx info, 503 warn, other 5xx error with the stack) and answers it as JSON. */
function sendError(request: FastifyRequest, reply: FastifyReply, e: ServiceError, err: unknown = e): void {
  // A 503 is the service's state (overloaded, loading, the store away), said and counted
  // elsewhere: a warn line with the reason, not an error with a stack per request.
  if (e.statusCode === 503) request.log.warn({ status: e.statusCode, error: e.code, reason: e.message }, 'request refused: service unavailable');
  else if (e.statusCode >= 500) request.log.error({ err }, 'request failed');
  else request.log.info({ status: e.statusCode, error: e.code, reason: e.message }, 'request rejected');
  void reply.code(e.statusCode).headers(e.headers).send({ error: e.code, message: e.message, ...(e.fields ? { fields: e.fields } : {}) });
}

export function registerErrorHandling(app: FastifyInstance): void {
  const allowed = registerMethodNotAllowed(app);
  app.setErrorHandler((err, request, reply) => sendError(request, reply, toServiceError(err, request), err));
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0];
    const methods = allowed(path).filter((m) => m !== 'HEAD');
    if (methods.length && !methods.includes(request.method)) {
      const allow = [...methods, ...(methods.includes('GET') ? ['HEAD'] : [])].join(', ');
      void reply.code(405).header('allow', allow).send({ error: 'method_not_allowed', message: `${request.method} is not allowed on ${path}; allowed: ${allow}` });
      return;
    }
    void reply.code(404).send({ error: 'not_found', message: `No route for ${request.method} ${request.url.split('?')[0]}` });
  });
}

/** Codes of the errors Node's HTTP parser raises before Fastify sees a request. */
const PARSER_ERRORS: Record<string, { status: number; error: string; message: string }> = {
  HPE_HEADER_OVERFLOW: { status: 431, error: 'headers_too_large', message: 'The request headers are too large.' },
  ERR_HTTP_REQUEST_TIMEOUT: { status: 408, error: 'request_timeout', message: 'The request did not arrive in time.' },
  ERR_HTTP_HEADERS_TIMEOUT: { status: 408, error: 'request_timeout', message: 'The request headers did not arrive in time.' },
};

/**
 * Fastify's clientErrorHandler: errors Node raises itself (a malformed request line, headers
 * too large, a request timeout) are answered in the same {error, message} JSON shape, then the
 * connection is closed.
 */
export function clientErrorHandler(err: NodeJS.ErrnoException & { bytesParsed?: number }, socket: import('node:net').Socket): void {
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const known = PARSER_ERRORS[err.code ?? ''] ?? { status: 400, error: 'bad_request', message: `The request could not be parsed as HTTP/1.1 (${err.code ?? 'malformed'}).` };
  socket.end(rawJsonAnswer(known.status, { error: known.error, message: known.message }));
}

/**
 * A path that exists under other methods gets 405 with Allow rather than 404. Patterns are
 * collected as routes are added (`:param` is one segment, `*` the rest).
 */
export function registerMethodNotAllowed(app: FastifyInstance): (path: string) => string[] {
  const routes: Array<{ methods: string[]; pattern: RegExp }> = [];
  app.addHook('onRoute', (route) => {
    const source = route.url
      .split('/')
      .map((seg) => (seg.startsWith(':') ? '[^/]+' : seg === '*' ? '.*' : seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
      .join('/');
    routes.push({ methods: [route.method].flat().map(String), pattern: new RegExp(`^${source}$`) });
  });
  return (path) => [...new Set(routes.filter((r) => r.pattern.test(path)).flatMap((r) => r.methods))];
}
