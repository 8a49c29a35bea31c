// Liveness, readiness and what model is loaded.
import type { FastifyInstance } from 'fastify';
import type { Detector } from '../detection/types.ts';

export async function healthRoutes(app: FastifyInstance, opts: { detector: Detector }): Promise<void> {
  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_request, reply) => {
    if (!opts.detector.ready) return reply.code(503).send({ status: 'starting', message: 'the model is loading or warming up' });
    return { status: 'ready' };
  });

  app.get('/v1/models', async () => {
    const info = opts.detector.info();
    return { models: [info] };
  });
}
