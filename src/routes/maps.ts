// GET /v1/maps/<token>: the PNG behind a map URL (POST /v1/detect with format=url), while it
// lasts. Under /v1, so the API key check applies as to every /v1 route.
import type { FastifyInstance } from 'fastify';
import { MapExpiredError } from '../errors.ts';
import type { MapStore } from './map-store.ts';
import { errorSchema, jsonSchema } from './response-schemas.ts';

export async function mapRoutes(app: FastifyInstance, opts: { maps: MapStore }): Promise<void> {
  const { maps } = opts;
  app.get<{ Params: { token: string } }>(
    '/v1/maps/:token',
    {
      schema: {
        summary: 'The map PNG of a format=url detection',
        tags: ['detection'],
        params: { type: 'object', properties: { token: { type: 'string', description: 'from the url of the detection\'s map' } }, required: ['token'] },
        response: {
          200: { description: 'The heatmap or overlay PNG', content: { 'image/png': { schema: { type: 'string', format: 'binary' } } } },
          404: { description: 'map_expired: past MAP_URL_TTL_MS, dropped to stay under MAP_URL_MAX_BYTES, or never issued', ...jsonSchema(errorSchema) },
        },
      },
    },
    async (request, reply) => {
      const found = maps.get(request.params.token);
      if (!found) {
        throw new MapExpiredError(
          `No map under this URL: map URLs last ${maps.ttlMs} ms (MAP_URL_TTL_MS) and the oldest are dropped when their PNGs pass ` +
            `${maps.maxBytes} bytes (MAP_URL_MAX_BYTES). Run the detection again for a new one.`,
        );
      }
      const seconds = Math.max(0, Math.floor((found.expiresAt - Date.now()) / 1000));
      // private: behind an API key, no shared cache may keep it.
      return reply.type('image/png').header('cache-control', `private, max-age=${seconds}`).send(found.png);
    },
  );
}
