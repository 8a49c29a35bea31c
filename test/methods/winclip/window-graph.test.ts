// The WinCLIP window graph against the float64 reference that follows anomalib's encode_image
// (test/support/reference-winclip.ts): image embedding, patch tokens and every window embedding
// at both scales, two images in one batch, both activations; and batch independence.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { ARCHS, generateClipWeights, generateModel } from '../../../src/dev/random-model.ts';
import { buildWindowGraph, ensureWindowGraph, windowGraphSpec, windowOutputName } from '../../../src/methods/winclip/window-graph.ts';
import { ensureGraph } from '../../../src/clip/onnx/graph-cache.ts';
import type { ClipConfig, ClipWeights } from '../../../src/clip/types.ts';
import { encodeImageReference } from '../../support/reference-winclip.ts';
import { relativeError } from '../../support/compare.ts';
import { seededPixels } from '../../support/lcg.ts';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'window-graph-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const flat = (rows: ArrayLike<number>[]) => Float64Array.from(rows.flatMap((r) => Array.from(r)));

async function openWindowGraph(weights: ClipWeights, imageSize: number, windowSizes: number[], name: string) {
  const path = join(dir, `${name}.onnx`);
  buildWindowGraph(weights, { imageSize, windowSizes }, path);
  const session = await ort.InferenceSession.create(path);
  const run = async (pixels: Float32Array, B: number) => {
    const out = await session.run({ pixel_values: new ort.Tensor('float32', pixels, [B, 3, imageSize, imageSize]) });
    return Object.fromEntries(Object.entries(out).map(([k, t]) => [k, { data: t.data as Float32Array, dims: [...t.dims] }]));
  };
  return { path, session, run };
}

const geluTiny: ClipConfig = { ...ARCHS.tiny, vision: { ...ARCHS.tiny.vision, act: 'gelu' }, text: { ...ARCHS.tiny.text, act: 'gelu' } };

describe.each([
  ['quick_gelu', ARCHS.tiny, 64],
  ['gelu', geluTiny, 64],
  ['quick_gelu, resized position embedding', ARCHS.tiny, 48],
])('window graph, tiny model with %s', (name, config, size) => {
  const weights = generateClipWeights(config, 5);
  const scales = [2, 3];

  it('matches the reference for every output, two images per batch', async () => {
    const graph = await openWindowGraph(weights, size, scales, `win-${name.replace(/\W+/g, '-')}-${size}`);
    const B = 2;
    const pixels = seededPixels(B * 3 * size * size, size + 3);
    const out = await graph.run(pixels, B);
    const g = size / config.vision.patchSize;
    const dim = config.projectionDim;
    expect(out.image_embeds.dims).toEqual([B, dim]);
    expect(out.patch_tokens.dims).toEqual([B, g * g, config.vision.width]);
    expect(out[windowOutputName(2)].dims).toEqual([B, (g - 1) ** 2, dim]);
    expect(out[windowOutputName(3)].dims).toEqual([B, (g - 2) ** 2, dim]);
    const refs = [0, 1].map((b) => encodeImageReference(weights, pixels, b, size, scales));
    expect(relativeError(out.image_embeds.data, flat(refs.map((r) => r.imageEmbedding)))).toBeLessThan(1e-4);
    expect(relativeError(out.patch_tokens.data, flat(refs.flatMap((r) => r.patchEmbeddings)))).toBeLessThan(1e-4);
    scales.forEach((k, s) => {
      expect(relativeError(out[windowOutputName(k)].data, flat(refs.flatMap((r) => r.windowEmbeddings[s])))).toBeLessThan(1e-4);
    });
    await graph.session.release();
  });
});

describe('window graph structure', () => {
  const weights = generateClipWeights(ARCHS.tiny, 2);

  it('gives each image its own windows: batch 1 and batch 3 agree to 1e-5', async () => {
    const graph = await openWindowGraph(weights, 64, [2, 3], 'batch');
    const plane = 3 * 64 * 64;
    const pixels = seededPixels(3 * plane, 17);
    const together = await graph.run(pixels.slice(), 3);
    for (let b = 0; b < 3; b++) {
      const alone = await graph.run(pixels.slice(b * plane, (b + 1) * plane), 1);
      for (const [name, t] of Object.entries(alone)) {
        const per = t.data.length;
        expect(relativeError(together[name].data.subarray(b * per, (b + 1) * per), t.data)).toBeLessThan(1e-5);
      }
    }
    // And twice the same run is bit-identical.
    const again = await graph.run(pixels.slice(), 3);
    for (const name of Object.keys(together)) expect(Array.from(again[name].data)).toEqual(Array.from(together[name].data));
    await graph.session.release();
  });

  it('stores the tower weights once although three sequence batches run through them', async () => {
    const graph = await openWindowGraph(weights, 64, [2, 3], 'size');
    await graph.session.release();
    const v = weights.vision;
    let values = v.patchEmbed.data.length + v.classEmbed.data.length + v.posEmbed.data.length + v.proj.data.length;
    for (const ln of [v.lnPre, v.lnPost]) values += ln.weight.data.length + ln.bias.data.length;
    for (const b of v.blocks) {
      for (const lin of [b.q, b.k, b.v, b.out, b.fc1, b.fc2]) values += lin.weight.data.length + (lin.bias?.data.length ?? 0);
      for (const ln of [b.ln1, b.ln2]) values += ln.weight.data.length + ln.bias.data.length;
    }
    const bytes = statSync(`${graph.path}.data`).size;
    expect(bytes).toBeGreaterThanOrEqual(values * 4);
    expect(bytes).toBeLessThan(values * 4 * 1.2);
  });

  it('refuses window sizes that do not fit the grid', () => {
    expect(() => buildWindowGraph(weights, { imageSize: 64, windowSizes: [9] }, join(dir, 'bad.onnx'))).toThrow(/window size 9/);
    expect(() => buildWindowGraph(weights, { imageSize: 60, windowSizes: [2] }, join(dir, 'bad.onnx'))).toThrow(/multiple of the patch size/);
  });
});

describe('ensureWindowGraph', () => {
  it('builds once into its own keyed cache folder, then reuses it; other options get another folder', async () => {
    const model = join(dir, 'tiny-model');
    generateModel({ arch: 'tiny', seed: 1, out: model });
    const weights = generateClipWeights(ARCHS.tiny, 1);
    let loads = 0;
    const load = async () => {
      loads += 1;
      return weights;
    };
    const cache = join(dir, 'cache');
    const first = await ensureWindowGraph(model, cache, { imageSize: 64, windowSizes: [2, 3] }, load);
    const second = await ensureWindowGraph(model, cache, { imageSize: 64, windowSizes: [2, 3] }, load);
    expect([first.built, second.built, loads]).toEqual([true, false, 1]);
    expect(second.path).toBe(first.path);
    expect(statSync(first.path).size).toBeGreaterThan(0);
    const other = await ensureWindowGraph(model, cache, { imageSize: 64, windowSizes: [2] }, load);
    expect(other.key).not.toBe(first.key);
    expect(loads).toBe(2);
    // A spec revision is part of the key: a graph of an older structure is not reused.
    const spec = windowGraphSpec({ imageSize: 64, windowSizes: [2, 3] });
    const older = await ensureGraph(model, cache, { ...spec, revision: undefined }, load);
    expect(older.key).not.toBe(first.key);
    expect(older.built).toBe(true);
  });
});
