// Liveness, readiness and what model is loaded.
import type { FastifyInstance } from 'fastify';
import type { Detector } from '../detection/types.ts';
import { ConnectingStore } from '../store/connecting-store.ts';
import type { Store } from '../store/store.ts';
import { errorSchema, healthSchema, jsonSchema, modelsResponseSchema } from './response-schemas.ts';

// Probes need no API key (security: [] overrides the document's default).
const probe = (summary: string, responses: Record<number, unknown>) => ({ summary, tags: ['operations'], security: [], response: responses });

/** How long /readyz waits for a store that was unreachable to answer again (probes time out at 1 s). */
const STORE_PROBE_MS = 800;

/**
 * Readiness and the store. Before the store has been reached once (it is down at start-up)
 * the replica is not ready: 503, so a load balancer sends it nothing it could not record, while
 * zero-shot detections sent to it directly are answered. Once it has been reached, losing it
 * leaves the replica ready ("degraded"): zero-shot detections go on, requests that need the
 * store get 503 store_unavailable; taking every replica out of service would stop both.
 */
async function storeReadiness(store: ConnectingStore): Promise<{ code: 200 | 503; body: { status: string; message?: string } }> {
  if (!store.opened) {
    const s = store.status();
    if (s.state === 'failed') return { code: 503, body: { status: 'failed', message: `the store cannot be opened: ${s.error ?? 'unknown error'}` } };
    const why = s.error ? `: ${s.error}` : '';
    return { code: 503, body: { status: 'starting', message: `the store is unreachable${why}, retrying (attempt ${s.attempts})` } };
  }
  if (store.status().state === 'unavailable') {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, STORE_PROBE_MS)));
    await Promise.race([store.ping().catch(() => undefined), late]);
    clearTimeout(timer);
  }
  const s = store.status();
  if (s.state !== 'unavailable') return { code: 200, body: { status: 'ready' } };
  return {
    code: 200,
    body: { status: 'degraded', message: `the store is unreachable (${s.error ?? 'no answer'}): zero-shot detections are served, requests that need the store get 503 store_unavailable` },
  };
}

export async function healthRoutes(app: FastifyInstance, opts: { detector: Detector; capabilities?: string[]; store?: Store }): Promise<void> {
  const health = jsonSchema(healthSchema);

  app.get('/healthz', { schema: probe('Liveness: the process is up', { 200: { description: 'up', ...health } }) }, async () => ({ status: 'ok' }));

  app.get(
    '/readyz',
    { schema: probe('Readiness: the model is loaded and warmed up', { 200: { description: "ready (status 'degraded': the store went away; zero-shot detections are served)", ...health }, 503: { description: 'still loading, or the store not reached yet', ...health } }) },
    async (_request, reply) => {
      if (!opts.detector.ready) return reply.code(503).send({ status: 'starting', message: 'the model is loading or warming up' });
      if (!(opts.store instanceof ConnectingStore)) return { status: 'ready' };
      const { code, body } = await storeReadiness(opts.store);
      return reply.code(code).send(body);
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
