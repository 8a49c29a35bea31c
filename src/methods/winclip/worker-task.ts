// The WinCLIP task that runs inside an inference worker, next to the window-graph session
// (model `winclip`): the query image and its reference images are resized (resize.ts, as
// anomalib's torchvision transform does) and go through the graph in one batched run, then the scores of scoring.ts, the upsampled map and the regions. The outcome
// has the shape of the `score-image` task's, so the detector and the evaluation tool treat both
// methods alike.
import { type RgbImage } from '../../imaging/decode.ts';
import { toPixelValues, type PreprocessConfig } from '../../clip/input/preprocess.ts';
import type { TaskHandler, TensorOut, WorkerContext } from '../../clip/runtime/worker-protocol.ts';
import { windowOutputName } from './window-graph.ts';
import { plane } from '../../imaging/plane.ts';
import { resizeBilinear } from '../../imaging/resample-maps.ts';
import { findRegions } from '../../scoring/regions.ts';
import type { ScoreImageOutcome } from '../dense-frequency/worker-task.ts';
import { makeMasks } from './masks.ts';
import { scoreWinclip, type WinclipEmbeddings, type WinclipReferences, type WinclipText } from './scoring.ts';

export const WINCLIP_TASK_NAME = 'winclip-score';
/** Runs the window graph on reference images only: their embeddings, to be cached and reused. */
export const WINCLIP_REFERENCES_TASK_NAME = 'winclip-references';

export interface WinclipPayload {
  /** The query image first, then the reference images (decoded sRGB, interleaved). */
  images: RgbImage[];
  /** The references' embeddings, already computed (`images` then holds the query only). */
  references?: WinclipReferences;
  /** The window graph's input size S, mean and std. */
  preprocess: PreprocessConfig;
  grid: number;
  dim: number;
  /** Vision width (size of the patch tokens). */
  width: number;
  windowSizes: number[];
  text: WinclipText;
  temperature: number;
  threshold: number;
}

/** ScoreImageOutcome; grid.full and grid.fused are both the WinCLIP grid map. */
export type WinclipOutcome = ScoreImageOutcome;

/** Rows [from, from + count) of a [batch, rows…] output as one block. */
function images(t: TensorOut, from: number, count: number): Float32Array {
  const per = t.data.length / t.dims[0];
  return t.data.subarray(from * per, (from + count) * per);
}

async function winclipTask(ctx: WorkerContext, p: WinclipPayload) {
  const t0 = performance.now();
  const batch = p.images.length;
  const references = batch - 1;
  const S = p.preprocess.size;
  const { width: imageWidth, height: imageHeight } = p.images[0];
  const pixels = toPixelValues(p.images, p.preprocess);
  const out = await ctx.infer('winclip', { pixel_values: { type: 'float32', data: pixels, dims: [batch, 3, S, S] } });
  const t1 = performance.now();

  const masks = p.windowSizes.map((k) => makeMasks(p.grid, p.grid, k, 1));
  const windows = p.windowSizes.map((k) => out[windowOutputName(k)]);
  const embeddings: WinclipEmbeddings = {
    imageEmbed: images(out.image_embeds, 0, 1),
    windowEmbeds: windows.map((t) => images(t, 0, 1)),
    patchTokens: images(out.patch_tokens, 0, 1),
  };
  const refs: WinclipReferences | undefined = p.references
    ? p.references
    : references
      ? { windowEmbeds: windows.map((t) => images(t, 1, references)), patchTokens: images(out.patch_tokens, 1, references) }
      : undefined;
  const scored = scoreWinclip({ embeddings, references: refs, text: p.text, masks, dim: p.dim, width: p.width, temperature: p.temperature });

  // forward(): interpolate(mode='bilinear') of the grid map to the image size, no smoothing.
  const grid = Float32Array.from(scored.map);
  const map = resizeBilinear(plane(p.grid, p.grid, grid), imageWidth, imageHeight).data;
  const regions = findRegions(map, imageWidth, imageHeight, p.threshold);
  const result: WinclipOutcome = {
    score: scored.imageScore,
    pImage: scored.pImage,
    map,
    grid: { full: grid, fused: grid },
    regions,
    encodeMs: t1 - t0,
    scoreMs: performance.now() - t1,
  };
  return { result, transfer: [map.buffer as ArrayBuffer] };
}

export interface WinclipReferencesPayload {
  images: RgbImage[];
  preprocess: PreprocessConfig;
  windowSizes: number[];
}

/** One reference image's window-graph outputs WinCLIP+ compares the query with. */
export interface WinclipReferenceEmbedding {
  /** Per scale, [masks.count, dim]. */
  windowEmbeds: Float32Array[];
  /** [N, width]. */
  patchTokens: Float32Array;
}

/** The window graph on reference images, in one batched run: each image's window embeddings and patch tokens. */
async function winclipReferencesTask(ctx: WorkerContext, p: WinclipReferencesPayload) {
  const batch = p.images.length;
  const S = p.preprocess.size;
  const out = await ctx.infer('winclip', { pixel_values: { type: 'float32', data: toPixelValues(p.images, p.preprocess), dims: [batch, 3, S, S] } });
  const result: WinclipReferenceEmbedding[] = [];
  for (let b = 0; b < batch; b++) {
    result.push({ windowEmbeds: p.windowSizes.map((k) => images(out[windowOutputName(k)], b, 1).slice()), patchTokens: images(out.patch_tokens, b, 1).slice() });
  }
  return { result, transfer: result.flatMap((r) => [...r.windowEmbeds, r.patchTokens].map((a) => a.buffer as ArrayBuffer)) };
}

export const tasks: Record<string, TaskHandler> = { [WINCLIP_TASK_NAME]: winclipTask, [WINCLIP_REFERENCES_TASK_NAME]: winclipReferencesTask };
