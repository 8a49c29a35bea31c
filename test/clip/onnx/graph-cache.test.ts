// Graph cache integrity: a cached folder whose weights were overwritten is rebuilt (or, with
// no weights to rebuild from, refused naming the file), never opened.
import { describe, expect, it, beforeEach, afterEach } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, readFileSync, statSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ARCHS, generateClipWeights } from '../../../src/dev/random-model.ts';
import { ensureGraphs, GraphIntegrityError } from '../../../src/clip/onnx/graph-cache.ts';
import { sha256File } from '../../../src/clip/onnx/graph-integrity.ts';
import type { ImageGraphOptions } from '../../../src/clip/types.ts';

const options: ImageGraphOptions = { imageSize: ARCHS.tiny.vision.imageSize, denseLayers: [1, 2], denseStart: 1, denseAttention: 'vv' };
const weights = generateClipWeights(ARCHS.tiny, 7);

let root: string;
let folder: string;
let cacheDir: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'graph-cache-'));
  folder = join(root, 'checkpoint');
  cacheDir = join(root, 'cache');
  // The key depends on the checkpoint folder's file names, sizes and times only.
  mkdirSync(folder);
  writeFileSync(join(folder, 'config.json'), '{}');
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

function corrupt(path: string): void {
  writeFileSync(path, randomBytes(statSync(path).size));
}

describe('graph cache integrity', () => {
  it('records size and sha256 of every graph file in complete.json', async () => {
    const g = await ensureGraphs(folder, cacheDir, options, async () => weights);
    const record = JSON.parse(readFileSync(join(g.imagePath, '..', 'complete.json'), 'utf8'));
    expect(Object.keys(record.files).sort()).toEqual(['image.onnx', 'image.onnx.data', 'text.onnx', 'text.onnx.data']);
    expect(record.files['image.onnx.data']).toEqual({ size: statSync(`${g.imagePath}.data`).size, sha256: sha256File(`${g.imagePath}.data`) });
  });

  it('reuses an intact cache without reading the weights', async () => {
    await ensureGraphs(folder, cacheDir, options, async () => weights);
    const again = await ensureGraphs(folder, cacheDir, options, async () => {
      throw new Error('weights read for an intact cache');
    });
    expect(again.built).toBe(false);
  });

  it.each(['image.onnx.data', 'text.onnx.data', 'image.onnx'])('rebuilds when %s is overwritten with random bytes of the same size', async (name) => {
    const first = await ensureGraphs(folder, cacheDir, options, async () => weights);
    const file = join(first.imagePath, '..', name);
    const good = sha256File(file);
    corrupt(file);
    const logs: string[] = [];
    const again = await ensureGraphs(folder, cacheDir, options, async () => weights, (m) => logs.push(m));
    expect(again.built).toBe(true);
    expect(sha256File(file)).toBe(good);
    expect(logs).toHaveLength(1);
    expect(logs[0]).toContain(file);
    expect(logs[0]).toMatch(/sha256/);
    expect(logs[0]).not.toMatch(/\n/);
  });

  it('rebuilds a truncated data file (size check)', async () => {
    const first = await ensureGraphs(folder, cacheDir, options, async () => weights);
    writeFileSync(`${first.imagePath}.data`, Buffer.alloc(10));
    const logs: string[] = [];
    expect((await ensureGraphs(folder, cacheDir, options, async () => weights, (m) => logs.push(m))).built).toBe(true);
    expect(logs[0]).toMatch(/size 10 bytes/);
  });

  it('refuses, naming the file, when the cache is corrupted and the weights are unavailable', async () => {
    const first = await ensureGraphs(folder, cacheDir, options, async () => weights);
    const file = `${first.imagePath}.data`;
    corrupt(file);
    const unavailable = async () => {
      throw new Error('checkpoint not found');
    };
    const err = await ensureGraphs(folder, cacheDir, options, unavailable).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GraphIntegrityError);
    expect((err as GraphIntegrityError).file).toBe(file);
    expect((err as Error).message).toContain(file);
    expect((err as Error).message).toContain('checkpoint not found');
    // Still refused on the next start: the corrupted folder was not marked good.
    await expect(ensureGraphs(folder, cacheDir, options, unavailable)).rejects.toThrow(GraphIntegrityError);
  });
});
