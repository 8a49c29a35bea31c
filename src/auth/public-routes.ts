// Routes that stay open whatever the API key and rate-limit settings: orchestrators probe
// health without credentials, and the API description hides nothing a key protects.
import type { FastifyRequest } from 'fastify';

const OPEN = new Set(['/healthz', '/readyz', '/openapi.json']);

export function isPublicRoute(request: FastifyRequest): boolean {
  const route = request.routeOptions.url;
  if (route === undefined) return false;
  return OPEN.has(route) || route === '/docs' || route.startsWith('/docs/');
}
