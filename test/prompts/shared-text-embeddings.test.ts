// Class text embeddings shared through the PostgreSQL store: two detectors ("replicas", each
// with its own model cache folder and in-memory cache) on one database: the second reads what
// the first computed instead of running the text tower, and scores the same. A store that
// cannot be reached costs only the sharing. Without PostgreSQL the file skips, saying why.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createClipDetector, type ClipDetector } from '../../src/detection/clip-detector.ts';
import type { DetectOptions } from '../../src/detection/types.ts';
import { generateModel } from '../../src/dev/random-model.ts';
import { denseFrequencyTextKey } from '../../src/methods/dense-frequency/text.ts';
import { loadSettings } from '../../src/settings.ts';
import { ConnectingStore } from '../../src/store/connecting-store.ts';
import { openPostgresStore } from '../../src/store/postgres-store.ts';
import type { Store } from '../../src/store/store.ts';
import { findPostgres, TestSchemas } from '../support/postgres.ts';

const found = await findPostgres();

if ('reason' in found) {
  console.warn(`shared text embedding tests skipped: no PostgreSQL server answered (${found.reason})`);
  describe.skip('shared text embeddings (no PostgreSQL server reachable)', () => {
    it('needs PostgreSQL at 127.0.0.1:5432, database test', () => {});
  });
} else {
  const schemas = new TestSchemas(found.url);
  const schema = schemas.next('text');
  let dir: string;
  const stores: Store[] = [];
  const detectors: ClipDetector[] = [];
  let image: Buffer;

  /** A replica: its own cache folder (graphs, no disk text store) and its own store connection. */
  async function replica(name: string, store: Store): Promise<ClipDetector> {
    const settings = loadSettings({}, {
      model: join(dir, 'tiny'),
      cacheDir: join(dir, `cache-${name}`),
      dataDir: join(dir, `data-${name}`),
      offline: '1',
      promptsDir: join(dir, 'prompts'),
      winclip: '0',
      musc: '0',
      textEmbeddingStore: '0',
    });
    const detector = await createClipDetector(settings, undefined, undefined, store);
    detectors.push(detector);
    return detector;
  }

  const options = (category: string): DetectOptions => ({ category, prompts: { mode: 'templated' }, map: 'none', threshold: 0.5, branches: false });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'shared-text-'));
    generateModel({ arch: 'tiny', seed: 1, out: join(dir, 'tiny') });
    for (let i = 0; i < 2; i++) stores.push(await openPostgresStore({ url: found.url, schema, poolSize: 2 }));
    image = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#6a6a6a' } }).png().toBuffer();
  }, 120_000);

  afterAll(async () => {
    for (const d of detectors) await d.close();
    for (const s of stores) await s.close();
    await schemas.drop().catch(() => undefined);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  describe('text embeddings shared through the store', () => {
    it('the second replica does not run the text tower for a category the first computed, and scores the same', async () => {
      const a = await replica('a', stores[0]!);
      const b = await replica('b', stores[1]!);
      const towerA = vi.spyOn(a.runtime, 'encodeTexts');
      const towerB = vi.spyOn(b.runtime, 'encodeTexts');

      const first = await a.detect(image, options('walnut'));
      expect(towerA).toHaveBeenCalledTimes(1);
      expect(a.text.computed).toBeGreaterThanOrEqual(1);
      // The write is not awaited by the detection: wait for the row.
      const key = a.text.sharedKey(denseFrequencyTextKey(a.runtime.graphs.key, 'walnut', { mode: 'templated' }))!;
      expect(key).toMatch(/^text\/1:[0-9a-f]{32}:.*:g\d+:[0-9a-f]{64}$/);
      for (let i = 0; i < 200 && !(await stores[1]!.getTextEmbedding(key)); i++) await new Promise((r) => setTimeout(r, 25));
      // Local graph keys differ (other cache folders); the shared key does not.
      expect(b.text.sharedKey(denseFrequencyTextKey(b.runtime.graphs.key, 'walnut', { mode: 'templated' }))).toBe(key);

      const hitsBefore = b.text.sharedHits;
      const second = await b.detect(image, options('walnut'));
      expect(towerB).not.toHaveBeenCalled();
      expect(b.text.sharedHits).toBe(hitsBefore + 1);
      expect(second.score).toBe(first.score);

      // Another category is computed by whichever replica needs it first.
      await b.detect(image, options('hazelnut'));
      expect(towerB).toHaveBeenCalledTimes(1);
    });

    it('a store that cannot be reached only costs the sharing: the text tower runs, the detection succeeds', async () => {
      const down = new ConnectingStore('postgres', () => new Promise<Store>(() => {})); // never opens
      const c = await replica('c', down);
      const tower = vi.spyOn(c.runtime, 'encodeTexts');
      const result = await c.detect(image, options('walnut'));
      expect(tower).toHaveBeenCalledTimes(1);
      expect(result.score).toEqual(expect.any(Number));
    });
  });
}
