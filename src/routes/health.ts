// Liveness, readiness and what model is loaded.
import type { FastifyInstance } from 'fastify';
import type { Detector } from '../detection/types.ts';
import { errorSchema, healthSchema, jsonSchema, modelsResponseSchema } from './response-schemas.ts';

// Probes need no API key (security: [] overrides the document's default).
const probe = (summary: string, responses: Record<number, unknown>) => ({ summary, tags: ['operations'], security: [], response: responses });

export async function healthRoutes(app: FastifyInstance, opts: { detector: Detector; capabilities?: string[] }): Promise<void> {
  const health = jsonSchema(healthSchema);

  app.get('/healthz', { schema: probe('Liveness: the process is up', { 200: { description: 'up', ...health } }) }, async () => ({ status: 'ok' }));

  app.get(
    '/readyz',
    { schema: probe('Readiness: the model is loaded and warmed up', { 200: { description: 'ready', ...health }, 503: { description: 'still loading', ...health } }) },
    async (_request, reply) => {
      if (!opts.detector.ready) return reply.code(503).send({ status: 'starting', message: 'the model is loading or warming up' });
      return { status: 'ready' };
    },
  );

  app.get(
    '/v1/models',
    {
      schema: {
        summary: 'The loaded checkpoint and what it offers',
        tags: ['detection'],
        response: { 200: { description: 'the loaded model', ...jsonSchema(modelsResponseSchema) }, 503: { description: 'the model is loading', ...jsonSchema(errorSchema) } },
      },
    },
    async () => {
      const info = opts.detector.info();
      return { models: [info], capabilities: opts.capabilities ?? ['detect'] };
    },
  );
}
