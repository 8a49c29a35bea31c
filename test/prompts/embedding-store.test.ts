// Class text embeddings on disk: round trip, refusal of damaged or foreign files, the file
// bound, and a detector that takes a category's embeddings from the store instead of the text
// tower after a "restart" (a second detector on the same runtime and store).
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClipDetector } from '../../src/detection/clip-detector.ts';
import { EmbeddingStore } from '../../src/prompts/embedding-store.ts';
import { loadSettings } from '../../src/settings.ts';
import { startTinyService, type TinyService } from '../support/tiny-service.ts';

const dir = mkdtempSync(join(tmpdir(), 'embedding-store-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const pair = (dim: number, seed: number) => ({
  normal: Float32Array.from({ length: dim }, (_, i) => Math.sin(seed + i)),
  abnormal: Float32Array.from({ length: dim }, (_, i) => Math.cos(seed * 3 + i)),
});

describe('EmbeddingStore', () => {
  it('gives back what it stored, bit for bit, under its key only', async () => {
    const store = new EmbeddingStore(join(dir, 'round-trip'));
    const value = pair(24, 1);
    await store.write('model-a|bottle', value);
    const back = await store.read('model-a|bottle', 24);
    expect(back).toEqual(value);
    expect(await store.read('model-a|screw', 24)).toBeUndefined();
    // A new instance (a restart) reads the same file.
    expect(await new EmbeddingStore(join(dir, 'round-trip')).read('model-a|bottle', 24)).toEqual(value);
  });

  it('ignores a file of another size, a damaged file and non-finite values', async () => {
    const folder = join(dir, 'damaged');
    const store = new EmbeddingStore(folder);
    await store.write('k', pair(8, 2));
    expect(await store.read('k', 16)).toBeUndefined(); // another model's width
    const [file] = readdirSync(folder);
    const bytes = readFileSync(join(folder, file));
    writeFileSync(join(folder, file), bytes.subarray(0, bytes.length - 3));
    expect(await store.read('k', 8)).toBeUndefined();
    const nan = pair(8, 2);
    nan.abnormal[5] = Number.NaN;
    await store.write('k', nan);
    expect(await store.read('k', 8)).toBeUndefined();
  });

  it('stops adding files at its limit and says so once', async () => {
    const logs: string[] = [];
    const store = new EmbeddingStore(join(dir, 'bounded'), 2, (m) => logs.push(m));
    for (let i = 0; i < 4; i++) await store.write(`k${i}`, pair(4, i));
    expect(readdirSync(join(dir, 'bounded'))).toHaveLength(2);
    expect(await store.read('k1', 4)).toBeDefined();
    expect(await store.read('k2', 4)).toBeUndefined();
    expect(logs).toHaveLength(1);
    expect(logs[0]).toMatch(/holds 2 files, its limit/);
  });
});

describe('the detector with a store', () => {
  let svc: TinyService;
  beforeAll(async () => {
    svc = await startTinyService({ textEmbeddingStore: '0' });
  });
  afterAll(() => svc?.close());

  it('a second detector (a restart) takes the embeddings from disk, not from the text tower', async () => {
    const runtime = svc.detector.runtime;
    const storeDir = join(dir, 'detector');
    let encodes = 0;
    const encodeTexts = runtime.encodeTexts.bind(runtime);
    runtime.encodeTexts = (texts, signal) => {
      encodes += 1;
      return encodeTexts(texts, signal);
    };
    try {
      const first = new ClipDetector(runtime, { promptCacheSize: 16, textStore: new EmbeddingStore(storeDir) });
      const computed = await first.method('dense-frequency').runner.classEmbeddings!('ball screw', { mode: 'templated' });
      const winclip = await first.method('winclip').runner.classEmbeddings!('ball screw', { mode: 'templated' });
      expect(encodes).toBe(2);
      expect(readdirSync(storeDir)).toHaveLength(2);

      const restarted = new ClipDetector(runtime, { promptCacheSize: 16, textStore: new EmbeddingStore(storeDir) });
      expect(await restarted.method('dense-frequency').runner.classEmbeddings!('ball screw', { mode: 'templated' })).toEqual(computed);
      expect(await restarted.method('winclip').runner.classEmbeddings!('ball screw', { mode: 'templated' })).toEqual(winclip);
      expect(encodes).toBe(2);
      // Another category is computed as before.
      await restarted.method('dense-frequency').runner.classEmbeddings!('pcb', { mode: 'templated' });
      expect(encodes).toBe(3);
    } finally {
      runtime.encodeTexts = encodeTexts;
    }
  });

  it('is on by default; TEXT_EMBEDDING_STORE=0 leaves the cache folder without it', () => {
    expect(loadSettings({}, {}).textEmbeddingStore).toBe(true);
    expect(svc.settings.textEmbeddingStore).toBe(false);
    expect(existsSync(join(svc.settings.cacheDir, 'text-embeddings'))).toBe(false);
  });
});
