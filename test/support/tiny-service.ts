// A real detector on the tiny generated model, and the app around it, for HTTP tests.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { generateModel } from '../../src/dev/random-model.ts';
import { createClipDetector, type ClipDetector } from '../../src/detection/clip-detector.ts';
import { loadSettings, type Settings } from '../../src/settings.ts';
import { buildApp } from '../../src/app.ts';
import type { MethodRegistry } from '../../src/methods/registry.ts';
import { CategoryProvider } from '../../src/categories/provider.ts';
import { CategoryService, categoryServiceOptions, openSettingsStore } from '../../src/categories/service.ts';

export interface TinyService {
  app: FastifyInstance;
  detector: ClipDetector;
  categories: CategoryService;
  settings: Settings;
  dir: string;
  close(): Promise<void>;
}

export async function startTinyService(overrides: Record<string, unknown> = {}, options: { registry?: MethodRegistry } = {}): Promise<TinyService> {
  const dir = mkdtempSync(join(tmpdir(), 'tiny-service-'));
  const model = join(dir, 'tiny');
  generateModel({ arch: 'tiny', seed: 1, out: model });
  // Its own (empty) prompt folder: the repository's models/prompts must not change what tests see.
  const settings = loadSettings({}, { model, cacheDir: join(dir, 'cache'), dataDir: join(dir, 'data'), offline: '1', logLevel: 'silent', promptsDir: join(dir, 'prompts'), ...overrides });
  const detector = await createClipDetector(settings, undefined, options.registry);
  const store = await openSettingsStore(settings);
  const categories = new CategoryService(store, detector, categoryServiceOptions(settings));
  const app = await buildApp({
    detector,
    defaultThreshold: settings.threshold,
    maxBodyBytes: settings.maxBodyBytes,
    maxImagePixels: settings.maxPixels,
    logLevel: settings.logLevel,
    registry: options.registry,
    categories: CategoryProvider.of(categories),
    mapUrls: { ttlMs: settings.mapUrlTtlMs, maxBytes: settings.mapUrlMaxBytes },
  });
  return {
    app,
    detector,
    categories,
    settings,
    dir,
    async close() {
      await app.close();
      await detector.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A multipart/form-data body built by hand, so tests control every byte. */
export function multipart(parts: Array<{ name: string; value: string | Buffer; filename?: string; type?: string }>) {
  const boundary = `----test${Math.random().toString(16).slice(2)}`;
  const chunks: Buffer[] = [];
  for (const p of parts) {
    let head = `--${boundary}\r\nContent-Disposition: form-data; name="${p.name}"`;
    if (p.filename !== undefined) head += `; filename="${p.filename}"\r\nContent-Type: ${p.type ?? 'application/octet-stream'}`;
    chunks.push(Buffer.from(`${head}\r\n\r\n`), Buffer.isBuffer(p.value) ? p.value : Buffer.from(p.value), Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { payload: Buffer.concat(chunks), headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
}
