// Fastify's pino logger options. Every line carries the request id (Fastify's reqId); request
// bodies are never logged, so no image bytes reach the logs; client errors log at info and only
// the service's own faults at error (see routes/errors.ts).

import type { FastifyInstance } from 'fastify';

/** Where log lines go; tests pass their own to read them. */
export interface LogStream {
  write(line: string): void;
}

/** Long query strings (a thousand prompts) would otherwise make one log line per request huge. */
const MAX_URL_CHARS = 512;

interface LoggedRequest {
  method: string;
  url: string;
  ip?: string;
  socket?: { remotePort?: number };
}

export const shortUrl = (url: string) => (url.length > MAX_URL_CHARS ? `${url.slice(0, MAX_URL_CHARS)}…(${url.length} chars)` : url);

/**
 * The access log: one info line per request when its answer is sent, with method, url, status,
 * ms (and reqId, as every request line). Its arrival is a debug line, for following a slow one.
 */
export function registerAccessLog(app: FastifyInstance): void {
  app.addHook('onRequest', async (request) => {
    request.log.debug({ method: request.method, url: shortUrl(request.url) }, 'incoming request');
  });
  app.addHook('onResponse', async (request, reply) => {
    request.log.info({ method: request.method, url: shortUrl(request.url), status: reply.statusCode, ms: Math.round(reply.elapsedTime * 10) / 10 }, 'request completed');
  });
}

export function loggerOptions(level = 'info', stream?: LogStream) {
  return {
    level,
    ...(stream ? { stream } : {}),
    serializers: {
      req: (request: LoggedRequest) => ({
        method: request.method,
        url: shortUrl(request.url),
        remoteAddress: request.ip,
        remotePort: request.socket?.remotePort,
      }),
    },
    // The serializer leaves headers out; this keeps keys out should that change.
    redact: { paths: ['req.headers.authorization', 'req.headers["x-api-key"]'], censor: '[redacted]' },
  };
}

/** What messageLog writes to: a pino logger (the app's). */
export interface LevelLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/**
 * The service's start-up and cache messages (`log(msg, fields)` of the runtime, the stores) as
 * JSON lines of its logger: `fields` become keys of the line (path, code…), and
 * `level: 'warn'` among them makes it a warning (failed cache writes); info otherwise.
 */
export function messageLog(logger: LevelLogger): (msg: string, fields?: Record<string, unknown>) => void {
  return (msg, fields) => {
    const { level, ...rest } = fields ?? {};
    if (level === 'warn') logger.warn(rest, msg);
    else logger.info(rest, msg);
  };
}
