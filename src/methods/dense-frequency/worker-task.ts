// The scoring task that runs inside an inference worker, next to the image session: one
// message in (decoded RGB + text embeddings), one out (score, maps, regions). Keeping the
// resizing and scoring in the worker keeps the O(N²·D) branch maths and the full-size pixel
// work off the HTTP thread.
import { type RgbImage } from '../../imaging/decode.ts';
import { toPixelValues, type PreprocessConfig } from '../../clip/input/preprocess.ts';
import type { TaskHandler, WorkerContext } from '../../clip/runtime/worker-protocol.ts';
import type { BranchText } from './branches.ts';
import { scoreImage, outputSigma, type ScoringSettings } from './pipeline.ts';
import { plane } from '../../imaging/plane.ts';
import { resizeAndBlur } from '../../imaging/resample-maps.ts';
import { findRegions, type Region } from '../../scoring/regions.ts';
import { fewShotGrid, normalizeRows, PATCH_KNN_GRAPH, type PatchMemory } from './patch-memory.ts';
import { graphBranchMaps, graphServes, SCORING_GRAPH } from './scoring-graph.ts';

export interface ScoreImagePayload {
  /** The decoded image (sRGB, interleaved); its size is the map's size. */
  image: RgbImage;
  /** Input size S, mean and std. */
  preprocess: PreprocessConfig;
  layers: number;
  grid: number;
  dim: number;
  text: BranchText;
  settings: ScoringSettings;
  threshold: number;
  /** Also upsample each part's map to the image size. */
  branchMaps: boolean;
  /** A category's normal reference patches (patch-memory.ts), shared, and their weight. */
  fewShot?: { memory: PatchMemory; weight: number };
}

export interface ScoreImageOutcome {
  score: number;
  pImage: number;
  map: Float32Array; // [height, width]
  grid: { full: Float32Array; high?: Float32Array; low?: Float32Array; fewShot?: Float32Array; fused: Float32Array };
  branchMaps?: Record<string, Float32Array>;
  branchImageScores?: { full?: number; high?: number; low?: number; fewShot?: number };
  regions: Region[];
  encodeMs: number;
  scoreMs: number;
}

/** This worker's private copies of shared memories (ONNX Runtime takes no SharedArrayBuffer), newest last. */
const privateMemories = new Map<string, Float32Array>();
const PRIVATE_MEMORY_BYTES = 1 << 30;

function privateCopy(memory: PatchMemory): Float32Array {
  let copy = privateMemories.get(memory.key);
  if (copy) {
    privateMemories.delete(memory.key);
  } else {
    copy = Float32Array.from(memory.memory);
    let bytes = copy.byteLength;
    for (const [k, v] of [...privateMemories].reverse()) {
      bytes += v.byteLength;
      if (bytes > PRIVATE_MEMORY_BYTES) privateMemories.delete(k);
    }
  }
  privateMemories.set(memory.key, copy);
  return copy;
}

/** Unit-length query features [L, N, D] against the memory → the few-shot grid map [N]. */
async function fewShotMap(ctx: WorkerContext, dense: Float32Array, memory: PatchMemory, patches: number): Promise<Float32Array> {
  const { layers, dim, count } = memory;
  const out = await ctx.infer(PATCH_KNN_GRAPH, {
    query: { type: 'float32', data: normalizeRows(dense, dim), dims: [layers, patches, dim] },
    memory: { type: 'float32', data: privateCopy(memory), dims: [layers, dim, count] },
  });
  return fewShotGrid(out.nearest_cosine.data, layers, patches);
}

async function scoreImageTask(ctx: WorkerContext, p: ScoreImagePayload) {
  const t0 = performance.now();
  const S = p.preprocess.size;
  const pixels = toPixelValues([p.image], p.preprocess);
  const out = await ctx.infer('image', { pixel_values: { type: 'float32', data: pixels, dims: [1, 3, S, S] } });
  const result = await scoreEncoded(ctx, p, p.image, p.threshold, out.image_embeds.data, out.dense_features.data, performance.now() - t0);
  return { result, transfer: transfersOf(result) };
}

/** Several images of one category (the same text, settings and memory) in one session run. */
export interface ScoreImagesPayload extends Omit<ScoreImagePayload, 'image' | 'threshold'> {
  images: RgbImage[];
  /** Each image's region threshold. */
  thresholds: number[];
}

/**
 * The images through the image graph as one batch (batch dimension B), then each scored as
 * score-image scores it. `encodeMs` is each image's share of the session run.
 */
async function scoreImagesTask(ctx: WorkerContext, p: ScoreImagesPayload) {
  const t0 = performance.now();
  const S = p.preprocess.size;
  const B = p.images.length;
  const pixels = toPixelValues(p.images, p.preprocess);
  const out = await ctx.infer('image', { pixel_values: { type: 'float32', data: pixels, dims: [B, 3, S, S] } });
  const encodeMs = (performance.now() - t0) / B;
  const embeds = out.image_embeds.data;
  const dense = out.dense_features.data;
  const perEmbed = embeds.length / B;
  const perDense = dense.length / B;
  const results: ScoreImageOutcome[] = [];
  for (let b = 0; b < B; b++) {
    const imageEmbed = embeds.slice(b * perEmbed, (b + 1) * perEmbed);
    const features = dense.slice(b * perDense, (b + 1) * perDense);
    results.push(await scoreEncoded(ctx, p, p.images[b], p.thresholds[b], imageEmbed, features, encodeMs));
  }
  return { result: results, transfer: results.flatMap(transfersOf) };
}

/** One image's scoring from its image-tower outputs: few-shot part, branches, map, regions. */
async function scoreEncoded(
  ctx: WorkerContext,
  p: Omit<ScoreImagePayload, 'image' | 'threshold'>,
  image: RgbImage,
  threshold: number,
  imageEmbed: Float32Array,
  dense: Float32Array,
  encodeMs: number,
): Promise<ScoreImageOutcome> {
  const t1 = performance.now();
  const S = p.preprocess.size;
  const { width, height } = image;
  const patches = p.grid * p.grid;
  const fewShot = p.fewShot ? { grid: await fewShotMap(ctx, dense, p.fewShot.memory, patches), weight: p.fewShot.weight } : undefined;
  // The branches as MatMuls in ONNX Runtime (scoring-graph.ts); branches.ts for what the graph does not serve.
  const maps = graphServes(p.settings, p.grid, p.grid)
    ? await graphBranchMaps((inputs) => ctx.infer(SCORING_GRAPH, inputs), { data: dense, layers: p.layers, gridH: p.grid, gridW: p.grid, dim: p.dim }, p.text, p.settings)
    : undefined;
  const scored = scoreImage({
    imageEmbed,
    dense,
    layers: p.layers,
    gridH: p.grid,
    gridW: p.grid,
    dim: p.dim,
    text: p.text,
    width,
    height,
    inputSize: S,
    settings: p.settings,
    fewShot,
    maps,
  });
  let branchMaps: ScoreImageOutcome['branchMaps'];
  if (p.branchMaps) {
    const sigma = outputSigma(p.settings.sigma, width, height, S);
    const up = (g: Float32Array) => resizeAndBlur(plane(p.grid, p.grid, g), width, height, sigma).data;
    const parts = Object.entries(scored.grid).filter(([name]) => name !== 'fused' && (name !== 'full' || scored.grid.high)) as [string, Float32Array][];
    if (parts.length) branchMaps = Object.fromEntries(parts.map(([name, g]) => [name, up(g)]));
  }
  const regions = findRegions(scored.map, width, height, threshold);
  return {
    score: scored.score,
    pImage: scored.pImage,
    map: scored.map,
    grid: scored.grid,
    branchMaps,
    branchImageScores: scored.branchImageScores,
    regions,
    encodeMs,
    scoreMs: performance.now() - t1,
  };
}

function transfersOf(result: ScoreImageOutcome): ArrayBuffer[] {
  const transfer = [result.map.buffer as ArrayBuffer];
  if (result.branchMaps) transfer.push(...Object.values(result.branchMaps).map((m) => m.buffer as ArrayBuffer));
  return transfer;
}

export interface DenseFeaturesPayload {
  images: RgbImage[];
  preprocess: PreprocessConfig;
}

/** Image embeddings [B, dim] and dense features [B, L, N, dim] of normal reference images. */
async function denseFeaturesTask(ctx: WorkerContext, p: DenseFeaturesPayload) {
  const S = p.preprocess.size;
  const pixels = toPixelValues(p.images, p.preprocess);
  const out = await ctx.infer('image', { pixel_values: { type: 'float32', data: pixels, dims: [p.images.length, 3, S, S] } });
  const result = { imageEmbeds: out.image_embeds.data, dense: out.dense_features.data };
  return { result, transfer: [result.imageEmbeds.buffer as ArrayBuffer, result.dense.buffer as ArrayBuffer] };
}

export const tasks: Record<string, TaskHandler> = { 'score-image': scoreImageTask, 'score-images': scoreImagesTask, 'dense-features': denseFeaturesTask };
