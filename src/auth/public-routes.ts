// Routes that stay open whatever the API key and rate-limit settings: orchestrators probe
// health without credentials, the API description hides nothing a key protects, and the web
// page (`/` and its bundles under /assets/, src/web/plugin.ts) is public: its API calls carry
// the key the person enters.
import type { FastifyRequest } from 'fastify';

const OPEN = new Set(['/healthz', '/readyz', '/openapi.json', '/']);

export function isPublicRoute(request: FastifyRequest): boolean {
  const route = request.routeOptions.url;
  if (route === undefined) return false;
  return OPEN.has(route) || route === '/docs' || route.startsWith('/docs/') || route.startsWith('/assets/');
}

/** Operational routes the rate limit never counts: probes, metrics scrapes and the API description. */
export function isOperationalRoute(request: FastifyRequest): boolean {
  const route = request.routeOptions.url;
  return route === '/metrics' || isPublicRoute(request);
}
