// The shared patch stem (transformer-ops.ts patchStem): the image, WinCLIP window and MuSc token
// graphs start from the same tokens, with the position embedding resized by the layout's
// convention at a non-native size — so their class-token embeddings agree.
import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { ARCHS, generateClipWeights } from '../../../src/dev/random-model.ts';
import { buildImageGraph } from '../../../src/clip/onnx/image-graph.ts';
import { buildWindowGraph } from '../../../src/methods/winclip/window-graph.ts';
import { buildTokenGraph } from '../../../src/methods/musc/token-graph.ts';
import type { PositionResize } from '../../../src/clip/onnx/position-embedding.ts';
import { seededPixels } from '../../support/lcg.ts';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'onnx-stem-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const weights = generateClipWeights(ARCHS.tiny, 11);
const S = 96; // not the tiny model's native 64: the position embedding is resized
const pixels = seededPixels(3 * S * S, 12);

async function embeds(build: (path: string) => void): Promise<Float32Array> {
  const path = join(dir, `g-${Math.random().toString(16).slice(2)}.onnx`);
  build(path);
  const session = await ort.InferenceSession.create(path);
  const out = await session.run({ pixel_values: new ort.Tensor('float32', pixels, [1, 3, S, S]) });
  await session.release();
  return out.image_embeds.data as Float32Array;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('patch stem shared by the image, window and token graphs', () => {
  it.each(['hf', 'open_clip'] as PositionResize[])('same class-token embeddings at a resized input (%s)', async (positionResize) => {
    const image = await embeds((p) => buildImageGraph(weights, { imageSize: S, denseLayers: [4], denseStart: 4, denseAttention: 'vv', positionResize }, p));
    const window = await embeds((p) => buildWindowGraph(weights, { imageSize: S, windowSizes: [2], positionResize }, p));
    const token = await embeds((p) => buildTokenGraph(weights, { imageSize: S, layers: [4], positionResize }, p));
    expect(maxAbsDiff(image, window)).toBeLessThan(1e-5);
    expect(maxAbsDiff(image, token)).toBeLessThan(1e-5);
  });

  it('the two resize conventions give different embeddings (the option reaches the graphs)', async () => {
    const hf = await embeds((p) => buildWindowGraph(weights, { imageSize: S, windowSizes: [2] }, p));
    const oc = await embeds((p) => buildWindowGraph(weights, { imageSize: S, windowSizes: [2], positionResize: 'open_clip' }, p));
    expect(maxAbsDiff(hf, oc)).toBeGreaterThan(1e-4);
  });
});
