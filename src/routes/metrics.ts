// GET /metrics (Prometheus text format) and the hook that counts and times every request.
import type { FastifyInstance } from 'fastify';
import type { ServiceMetrics } from '../observability/metrics.ts';

/** Counts every response by route pattern (not raw URL, so label sets stay bounded). */
export function registerRequestMetrics(app: FastifyInstance, metrics: ServiceMetrics): void {
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.observeRequest(request.method, route, reply.statusCode, reply.elapsedTime / 1000);
  });
}

export async function metricsRoutes(app: FastifyInstance, opts: { metrics: ServiceMetrics }): Promise<void> {
  app.get(
    '/metrics',
    {
      schema: {
        summary: 'Prometheus metrics',
        description:
          'Requests by route and status, latency histograms, detection stage timings, inference queue depth, worker restarts, prompt cache hits, webhook deliveries, process memory.',
        tags: ['operations'],
        produces: ['text/plain'],
        response: { 200: { description: 'Prometheus text exposition format', type: 'string' } },
      },
    },
    async (_request, reply) => reply.type(opts.metrics.contentType).send(await opts.metrics.render()),
  );
}
