// Fastify's pino logger options. Every line carries the request id (Fastify's reqId); request
// bodies are never logged, so no image bytes reach the logs; client errors log at info and only
// the service's own faults at error (see routes/errors.ts).

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

export function loggerOptions(level = 'info', stream?: LogStream) {
  return {
    level,
    ...(stream ? { stream } : {}),
    serializers: {
      req: (request: LoggedRequest) => ({
        method: request.method,
        url: request.url.length > MAX_URL_CHARS ? `${request.url.slice(0, MAX_URL_CHARS)}…(${request.url.length} chars)` : request.url,
        remoteAddress: request.ip,
        remotePort: request.socket?.remotePort,
      }),
    },
    // The serializer leaves headers out; this keeps keys out should that change.
    redact: { paths: ['req.headers.authorization', 'req.headers["x-api-key"]'], censor: '[redacted]' },
  };
}
