// The ONNX graphs against the plain float64 reference forward (test/support/reference-clip.ts):
// both towers, both activations, both dense attentions, two input resolutions, both layouts.
import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { ARCHS, generateClipWeights, generateModel } from '../../../src/dev/random-model.ts';
import { loadClipWeights } from '../../../src/clip/weights/clip-weights.ts';
import { buildTextGraph } from '../../../src/clip/onnx/text-graph.ts';
import { trimToPooling } from '../../../src/clip/input/tokenizer.ts';
import { buildImageGraph } from '../../../src/clip/onnx/image-graph.ts';
import type { ClipConfig, ClipWeights, ImageGraphOptions } from '../../../src/clip/types.ts';
import { referenceImageForward, referenceTextEmbeds } from '../../support/reference-clip.ts';
import { relativeError } from '../../support/compare.ts';
import { seededPixels } from '../../support/lcg.ts';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'onnx-graphs-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function sampleIds(config: ClipConfig): BigInt64Array {
  const T = config.text.contextLength;
  const eot = config.text.eosTokenId;
  const bos = config.text.bosTokenId;
  const rows = [
    [bos, 10, 20, 30, eot],
    [bos, 5, eot],
    [bos, ...Array.from({ length: 40 }, (_, i) => (i * 37) % 500 + 1), eot],
  ];
  const ids = new BigInt64Array(rows.length * T);
  rows.forEach((r, i) => r.forEach((v, j) => (ids[i * T + j] = BigInt(v))));
  return ids;
}

async function runText(weights: ClipWeights, ids: BigInt64Array, name: string, length = weights.config.text.contextLength): Promise<Float32Array> {
  const path = join(dir, `${name}.onnx`);
  buildTextGraph(weights, path);
  const session = await ort.InferenceSession.create(path);
  const out = await session.run({ input_ids: new ort.Tensor('int64', ids, [ids.length / length, length]) });
  await session.release();
  return out.text_embeds.data as Float32Array;
}

async function runImage(weights: ClipWeights, opts: ImageGraphOptions, pixels: Float32Array, B: number, name: string) {
  const path = join(dir, `${name}.onnx`);
  buildImageGraph(weights, opts, path);
  const session = await ort.InferenceSession.create(path);
  const S = opts.imageSize;
  const out = await session.run({ pixel_values: new ort.Tensor('float32', pixels, [B, 3, S, S]) });
  await session.release();
  return { imageEmbeds: out.image_embeds.data as Float32Array, dense: out.dense_features.data as Float32Array, dims: out.dense_features.dims };
}

function concat(rows: Float64Array[]): Float64Array {
  const out = new Float64Array(rows.reduce((n, r) => n + r.length, 0));
  let o = 0;
  for (const r of rows) {
    out.set(r, o);
    o += r.length;
  }
  return out;
}

const geluTiny: ClipConfig = {
  ...ARCHS.tiny,
  vision: { ...ARCHS.tiny.vision, act: 'gelu' },
  text: { ...ARCHS.tiny.text, act: 'gelu' },
};

describe.each([
  ['quick_gelu', ARCHS.tiny],
  ['gelu', geluTiny],
])('tiny model with %s', (act, config) => {
  const weights = generateClipWeights(config, 7);

  it('text tower matches the reference to 1e-4', async () => {
    const ids = sampleIds(config);
    const onnx = await runText(weights, ids, `text-${act}`);
    const ref = concat(referenceTextEmbeds(weights, ids, config.text.contextLength));
    expect(relativeError(onnx, ref)).toBeLessThan(1e-4);
  });

  it('text tower on ids cut after the last end-of-text token gives the full-length embeddings', async () => {
    const ids = sampleIds(config);
    const full = await runText(weights, ids, `text-full-${act}`);
    const cut = trimToPooling(ids, 3);
    expect(cut.length).toBe(42); // the longest row: BOS, 40 tokens, EOT
    const short = await runText(weights, cut.ids, `text-cut-${act}`, cut.length);
    expect(relativeError(short, Float64Array.from(full))).toBeLessThan(1e-5);
    // One short row alone (length 3) too, against the reference.
    const one = trimToPooling(ids.slice(config.text.contextLength, 2 * config.text.contextLength), 1);
    expect(one.length).toBe(3);
    const ref = referenceTextEmbeds(weights, ids.slice(config.text.contextLength, 2 * config.text.contextLength), config.text.contextLength)[0];
    expect(relativeError(await runText(weights, one.ids, `text-one-${act}`, 3), ref)).toBeLessThan(1e-4);
  });

  it.each([
    [64, 'vv', [2, 3, 4], 3],
    [96, 'vv', [2, 4], 2],
    [64, 'qqkk', [1, 3, 4], 3],
    [96, 'qqkk', [4], 4],
  ] as const)('image tower at %i px, %s dense attention, layers %j from block %i matches the reference', async (size, attention, layers, start) => {
    const opts: ImageGraphOptions = { imageSize: size, denseLayers: [...layers], denseStart: start, denseAttention: attention };
    const B = 2;
    const pixels = seededPixels(B * 3 * size * size, size + start);
    const onnx = await runImage(weights, opts, pixels, B, `image-${act}-${size}-${attention}-${start}`);
    const grid = size / config.vision.patchSize;
    expect(onnx.dims).toEqual([B, layers.length, grid * grid, config.projectionDim]);
    const ref = referenceImageForward(weights, pixels, B, opts);
    expect(relativeError(onnx.imageEmbeds, concat(ref.imageEmbeds))).toBeLessThan(1e-4);
    expect(relativeError(onnx.dense, concat(ref.dense))).toBeLessThan(1e-4);
  });
});

describe('dense path', () => {
  it('differs from the plain path where it applies, and equals it before the start block', async () => {
    const weights = generateClipWeights(ARCHS.tiny, 3);
    const pixels = seededPixels(3 * 64 * 64, 11);
    const plain = await runImage(weights, { imageSize: 64, denseLayers: [2, 4], denseStart: 4, denseAttention: 'vv' }, pixels.slice(), 1, 'plain');
    const dense = await runImage(weights, { imageSize: 64, denseLayers: [2, 4], denseStart: 3, denseAttention: 'vv' }, pixels.slice(), 1, 'dense');
    const half = plain.dense.length / 2;
    // Layer 2 is before both starts: identical. Layer 4 follows different paths: different.
    expect(relativeError(dense.dense.subarray(0, half), plain.dense.subarray(0, half))).toBeLessThan(1e-6);
    expect(relativeError(dense.dense.subarray(half), plain.dense.subarray(half))).toBeGreaterThan(1e-2);
    // The class-token path is untouched by the dense path.
    expect(relativeError(dense.imageEmbeds, plain.imageEmbeds)).toBeLessThan(1e-6);
  });
});

describe('checkpoint layouts', () => {
  it('Hugging Face and open_clip files of the same seed give the same embeddings', async () => {
    const hfDir = join(dir, 'hf');
    const ocDir = join(dir, 'oc');
    generateModel({ arch: 'tiny', seed: 5, out: hfDir, layout: 'hf' });
    generateModel({ arch: 'tiny', seed: 5, out: ocDir, layout: 'open_clip' });
    const hf = await loadClipWeights(hfDir);
    const oc = await loadClipWeights(ocDir);
    expect(hf.layout).toBe('hf');
    expect(oc.layout).toBe('open_clip');
    const ids = sampleIds(hf.weights.config);
    const tHf = await runText(hf.weights, ids, 'layout-text-hf');
    const tOc = await runText(oc.weights, ids, 'layout-text-oc');
    expect(relativeError(tOc, tHf)).toBeLessThan(1e-6);
    const opts: ImageGraphOptions = { imageSize: 64, denseLayers: [2, 4], denseStart: 3, denseAttention: 'vv' };
    const pixels = seededPixels(3 * 64 * 64, 2);
    const iHf = await runImage(hf.weights, opts, pixels.slice(), 1, 'layout-image-hf');
    const iOc = await runImage(oc.weights, opts, pixels.slice(), 1, 'layout-image-oc');
    expect(relativeError(iOc.imageEmbeds, iHf.imageEmbeds)).toBeLessThan(1e-6);
    expect(relativeError(iOc.dense, iHf.dense)).toBeLessThan(1e-6);
  });
});
