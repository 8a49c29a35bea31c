// The whole WinCLIP method on the tiny model, through the real detector and worker, against the
// float64 reference that follows anomalib's code path step by step
// (test/support/reference-winclip.ts): zero-shot and few-shot image scores and maps; then
// run-to-run and batch-size stability.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { join } from 'node:path';
import { decodeImage, type DecodedImage } from '../../../src/imaging/decode.ts';
import { toPixelValues } from '../../../src/clip/input/preprocess.ts';
import { loadClipWeights } from '../../../src/clip/weights/clip-weights.ts';
import type { ClipWeights } from '../../../src/clip/types.ts';
import { windowOutputName } from '../../../src/methods/winclip/window-graph.ts';
import { makeMasks } from '../../../src/methods/winclip/masks.ts';
import { scoreWinclip, WINCLIP_TEMPERATURE } from '../../../src/methods/winclip/scoring.ts';
import { referenceTextEmbeds } from '../../support/reference-clip.ts';
import {
  bilinearReference,
  createPromptEnsembleReference,
  encodeImageReference,
  textEmbeddingsReference,
  winclipReference,
} from '../../support/reference-winclip.ts';
import { startTinyService, type TinyService } from '../../support/tiny-service.ts';

let svc: TinyService;
let weights: ClipWeights;
let query: DecodedImage;
let normals: DecodedImage[];

const SCALES = [2, 3];

async function makeImage(width: number, height: number, background: string, spot?: { left: number; top: number; color: string }): Promise<DecodedImage> {
  let img = sharp({ create: { width, height, channels: 3, background } });
  if (spot) img = img.composite([{ input: { create: { width: 12, height: 10, channels: 3, background: spot.color } }, left: spot.left, top: spot.top }]);
  return decodeImage(await img.png().toBuffer());
}

beforeAll(async () => {
  svc = await startTinyService();
  weights = (await loadClipWeights(join(svc.dir, 'tiny'))).weights;
  query = await makeImage(96, 72, '#707070', { left: 50, top: 20, color: '#d02020' });
  normals = [await makeImage(80, 80, '#727272'), await makeImage(64, 96, '#6a6e70', { left: 5, top: 60, color: '#757575' })];
});
afterAll(() => svc?.close());

const referenceText = new Map<string, Float64Array[]>();

/** The reference's WinCLIP for `image` with `refs`, from raw pixels and the tiny model's weights. */
async function reference(category: string, image: DecodedImage, refs: DecodedImage[]) {
  const runtime = svc.detector.runtime;
  const S = runtime.graphOptions.imageSize;
  const g = runtime.grid;
  let text = referenceText.get(category);
  if (!text) {
    const { normal, anomalous } = createPromptEnsembleReference(category);
    const embed = (prompts: string[]) => referenceTextEmbeds(weights, runtime.tokenizer.encode(prompts), runtime.tokenizer.contextLength);
    referenceText.set(category, (text = textEmbeddingsReference(embed(normal), embed(anomalous))));
  }
  const pixels = toPixelValues([image, ...refs], runtime.preprocess);
  const encodings = [image, ...refs].map((_, b) => encodeImageReference(weights, pixels, b, S, SCALES));
  const result = winclipReference(encodings[0], text, g, SCALES, encodings.slice(1));
  return { ...result, map: bilinearReference(result.grid, g, image.width, image.height) };
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

describe('WinCLIP on the tiny model against the anomalib-following reference', () => {
  it.each([
    ['zero-shot', 0],
    ['few-shot, 1 reference', 1],
    ['few-shot, 2 references', 2],
  ])('%s: image score and map to 1e-4', async (_name, k) => {
    const refs = normals.slice(0, k);
    const { outcome } = await svc.detector.scoreDecoded({ image: query, category: 'metal plate', prompts: { mode: 'templated' }, threshold: 0.5, method: 'winclip', references: refs });
    const ref = await reference('metal plate', query, refs);
    expect(Math.abs(outcome.score - ref.imageScore)).toBeLessThan(1e-4);
    expect(maxAbsDiff(outcome.grid.fused, ref.grid)).toBeLessThan(1e-4);
    expect(outcome.map.length).toBe(query.width * query.height);
    expect(maxAbsDiff(outcome.map, ref.map)).toBeLessThan(1e-4);
    // The comparison has teeth: the scores vary over the map and the few-shot part moves them.
    expect(Math.max(...ref.grid) - Math.min(...ref.grid)).toBeGreaterThan(1e-3);
  }, 60_000);

  it('few-shot changes the result; a reference equal to the query halves the zero-shot scores', async () => {
    const zero = (await svc.detector.scoreDecoded({ image: query, category: 'screw', prompts: { mode: 'templated' }, threshold: 0.5, method: 'winclip' })).outcome;
    const one = (await svc.detector.scoreDecoded({ image: query, category: 'screw', prompts: { mode: 'templated' }, threshold: 0.5, method: 'winclip', references: [normals[0]] })).outcome;
    expect(Math.abs(one.score - zero.score)).toBeGreaterThan(1e-4);
    // Association with itself is 0 everywhere: map = zero-shot / 2, score = p / 2.
    const self = (await svc.detector.scoreDecoded({ image: query, category: 'screw', prompts: { mode: 'templated' }, threshold: 0.5, method: 'winclip', references: [query] })).outcome;
    expect(Math.abs(self.score - zero.score / 2)).toBeLessThan(1e-5);
    expect(maxAbsDiff(self.grid.fused, Array.from(zero.grid.fused, (v) => v / 2))).toBeLessThan(1e-5);
  });
});

describe('stability', () => {
  it('two runs give bit-identical image scores and maps', async () => {
    const run = () => svc.detector.scoreDecoded({ image: query, category: 'pcb', prompts: { mode: 'templated' }, threshold: 0.5, method: 'winclip', references: normals });
    const [a, b] = [(await run()).outcome, (await run()).outcome];
    expect(b.score).toBe(a.score);
    expect(Buffer.from(b.map.buffer).equals(Buffer.from(a.map.buffer))).toBe(true);
    expect(Array.from(b.grid.fused)).toEqual(Array.from(a.grid.fused));
  });

  it('scores do not depend on the batch: batch 1 vs batch 3, and a query batched with its references', async () => {
    const runtime = svc.detector.runtime;
    const S = runtime.graphOptions.imageSize;
    const g = runtime.grid;
    const dim = runtime.dim;
    const width = runtime.config.vision.width;
    const masks = SCALES.map((k) => makeMasks(g, g, k));
    const text = await svc.detector.method('winclip').runner.classEmbeddings!('pcb', { mode: 'templated' });
    const images = [query, ...normals];
    const pixels = toPixelValues(images, runtime.preprocess);
    const plane = 3 * S * S;
    const infer = async (from: number, count: number) =>
      runtime.pool.infer('winclip', { pixel_values: { type: 'float32', data: pixels.slice(from * plane, (from + count) * plane), dims: [count, 3, S, S] } });
    /** Image b of a run's outputs, as scoreWinclip takes them. */
    const pick = (out: Awaited<ReturnType<typeof infer>>, b: number) => {
      const at = (name: string) => {
        const per = out[name].data.length / out[name].dims[0];
        return out[name].data.slice(b * per, (b + 1) * per);
      };
      return { imageEmbed: at('image_embeds'), windowEmbeds: SCALES.map((k) => at(windowOutputName(k))), patchTokens: at('patch_tokens') };
    };
    const score = (e: ReturnType<typeof pick>, refs: ReturnType<typeof pick>[] = []) =>
      scoreWinclip({
        embeddings: e,
        references: refs.length
          ? {
              windowEmbeds: SCALES.map((_, s) => Float32Array.from(refs.flatMap((r) => Array.from(r.windowEmbeds[s])))),
              patchTokens: Float32Array.from(refs.flatMap((r) => Array.from(r.patchTokens))),
            }
          : undefined,
        text,
        masks,
        dim,
        width,
        temperature: WINCLIP_TEMPERATURE,
      });

    const together = await infer(0, 3);
    const alone = await Promise.all([0, 1, 2].map((b) => infer(b, 1)));
    for (let b = 0; b < 3; b++) {
      const s3 = score(pick(together, b));
      const s1 = score(pick(alone[b], 0));
      expect(Math.abs(s3.imageScore - s1.imageScore)).toBeLessThan(1e-5);
      expect(maxAbsDiff(s3.map, s1.map)).toBeLessThan(1e-5);
    }
    // Few-shot as the service runs it (query + references in one batch) vs each image alone.
    const batched = score(pick(together, 0), [pick(together, 1), pick(together, 2)]);
    const separate = score(pick(alone[0], 0), [pick(alone[1], 0), pick(alone[2], 0)]);
    expect(Math.abs(batched.imageScore - separate.imageScore)).toBeLessThan(1e-5);
    expect(maxAbsDiff(batched.map, separate.map)).toBeLessThan(1e-5);
  });
});
