// The Fastify application: plugins and routes around a detector. Kept apart from server.ts
// so tests build it with their own detector and inject requests without a socket.
import Fastify, { type FastifyInstance } from 'fastify';
import multipart from '@fastify/multipart';
import type { Detector } from './detection/types.ts';
import { registerErrorHandling } from './routes/errors.ts';
import { detectRoutes } from './routes/detect.ts';
import { healthRoutes } from './routes/health.ts';

export interface AppOptions {
  detector: Detector;
  defaultThreshold: number;
  maxBodyBytes: number;
  logLevel?: string;
}

export async function buildApp(opts: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    logger: { level: opts.logLevel ?? 'info' },
    bodyLimit: opts.maxBodyBytes,
    // Request ids let an operator follow one request through the logs.
    requestIdHeader: 'x-request-id',
    genReqId: () => crypto.randomUUID(),
  });
  registerErrorHandling(app);
  await app.register(multipart, { limits: { fileSize: opts.maxBodyBytes } });
  await app.register(healthRoutes, { detector: opts.detector });
  await app.register(detectRoutes, { detector: opts.detector, defaultThreshold: opts.defaultThreshold, maxBodyBytes: opts.maxBodyBytes });
  return app;
}
