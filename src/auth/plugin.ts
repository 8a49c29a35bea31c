// API key check and per-key rate limit, as root-level hooks: registered before the routes so
// every route gets them (@fastify/rate-limit attaches itself to routes as they are added).
import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyInstance } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import { RateLimitedError, UnauthorizedError } from '../errors.ts';
import type { ApiKeys } from './api-keys.ts';
import { isOperationalRoute, isPublicRoute } from './public-routes.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** Id of the API key the request carried (a digest prefix), once checked. */
    apiKeyId?: string;
  }
}

export interface AuthOptions {
  keys: ApiKeys;
  /** Requests per window per key (per client address when keys are off); 0 = no limit. */
  rateLimitMax: number;
  rateLimitWindowMs: number;
}

// One answer for a missing, malformed or wrong key: nothing tells a caller which it was.
const unauthorized = () =>
  new UnauthorizedError('A valid API key is required: Authorization: Bearer <key> or x-api-key: <key>.', {
    headers: { 'www-authenticate': 'Bearer realm="clip-anomaly"' },
  });

/** The key a request carries: `x-api-key`, else `Authorization: Bearer <key>`. */
export function presentedKey(headers: IncomingHttpHeaders): string | undefined {
  const header = headers['x-api-key'];
  if (typeof header === 'string') return header;
  const auth = headers.authorization;
  const bearer = auth && /^Bearer\s+(\S+)\s*$/i.exec(auth);
  return bearer ? bearer[1] : undefined;
}

export async function registerAuth(app: FastifyInstance, opts: AuthOptions): Promise<void> {
  app.decorateRequest('apiKeyId', undefined);
  if (opts.keys.enabled) {
    app.addHook('onRequest', async (request) => {
      if (isPublicRoute(request)) return;
      const id = opts.keys.match(presentedKey(request.headers));
      if (!id) throw unauthorized();
      request.apiKeyId = id;
    });
  }
  if (opts.rateLimitMax > 0) {
    await app.register(rateLimit, {
      max: opts.rateLimitMax,
      timeWindow: opts.rateLimitWindowMs,
      keyGenerator: (request) => request.apiKeyId ?? request.ip,
      // Probes and scrapes every few seconds must neither use up a client's budget nor be refused.
      allowList: (request) => isOperationalRoute(request),
      errorResponseBuilder: (_request, context) =>
        new RateLimitedError(`Rate limit of ${context.max} requests per ${context.after} reached; retry after ${Math.ceil(context.ttl / 1000)} s.`),
    });
  }
}
