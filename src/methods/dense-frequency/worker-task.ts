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
  /** Also upsample each branch map to the image size. */
  branchMaps: boolean;
}

export interface ScoreImageOutcome {
  score: number;
  pImage: number;
  map: Float32Array; // [height, width]
  grid: { full: Float32Array; high?: Float32Array; low?: Float32Array; fused: Float32Array };
  branchMaps?: { full: Float32Array; high: Float32Array; low: Float32Array };
  branchImageScores?: { full: number; high: number; low: number };
  regions: Region[];
  encodeMs: number;
  scoreMs: number;
}

async function scoreImageTask(ctx: WorkerContext, p: ScoreImagePayload) {
  const t0 = performance.now();
  const S = p.preprocess.size;
  const { width, height } = p.image;
  const pixels = toPixelValues([p.image], p.preprocess);
  const out = await ctx.infer('image', { pixel_values: { type: 'float32', data: pixels, dims: [1, 3, S, S] } });
  const t1 = performance.now();
  const scored = scoreImage({
    imageEmbed: out.image_embeds.data,
    dense: out.dense_features.data,
    layers: p.layers,
    gridH: p.grid,
    gridW: p.grid,
    dim: p.dim,
    text: p.text,
    width,
    height,
    inputSize: S,
    settings: p.settings,
  });
  let branchMaps: ScoreImageOutcome['branchMaps'];
  if (p.branchMaps && scored.grid.high && scored.grid.low) {
    const sigma = outputSigma(p.settings.sigma, width, height, S);
    const up = (g: Float32Array) => resizeAndBlur(plane(p.grid, p.grid, g), width, height, sigma).data;
    branchMaps = { full: up(scored.grid.full), high: up(scored.grid.high), low: up(scored.grid.low) };
  }
  const regions = findRegions(scored.map, width, height, p.threshold);
  const result: ScoreImageOutcome = {
    score: scored.score,
    pImage: scored.pImage,
    map: scored.map,
    grid: scored.grid,
    branchMaps,
    branchImageScores: scored.branchImageScores,
    regions,
    encodeMs: t1 - t0,
    scoreMs: performance.now() - t1,
  };
  const transfer = [scored.map.buffer as ArrayBuffer];
  if (branchMaps) transfer.push(...[branchMaps.full, branchMaps.high, branchMaps.low].map((m) => m.buffer as ArrayBuffer));
  return { result, transfer };
}

export const tasks: Record<string, TaskHandler> = { 'score-image': scoreImageTask };
