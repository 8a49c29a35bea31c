// MuSc's two tasks inside an inference worker, next to the token-graph session (model `musc`):
// - `musc-encode`: images → musc_tokens and image_embeds (token-graph.ts), in session runs of
//   at most RUN_IMAGES images;
// - `musc-score`: every image's features of one batch → the mutual scoring (scoreMusc, pure and
//   CPU-heavy: O(N²·L²·C)), then per query image its map at the image size and its regions.
// The main thread only moves buffers between the two.
import type { RgbImage } from '../../imaging/decode.ts';
import { toPixelValues, type PreprocessConfig } from '../../clip/input/preprocess.ts';
import type { TaskHandler, WorkerContext } from '../../clip/runtime/worker-protocol.ts';
import { plane } from '../../imaging/plane.ts';
import { resizeBilinear } from '../../imaging/resample-maps.ts';
import { findRegions } from '../../scoring/regions.ts';
import type { ScoreImageOutcome } from '../dense-frequency/worker-task.ts';
import { scoreMusc } from './musc.ts';
import { MUSC_GRAPH } from './token-graph.ts';

export const MUSC_ENCODE_TASK = 'musc-encode';
export const MUSC_SCORE_TASK = 'musc-score';

/** Images per session run: large enough to amortise a run, small enough to bound its memory. */
export const RUN_IMAGES = 8;

export interface MuscEncodePayload {
  images: RgbImage[];
  /** The token graph's input size S, mean and std. */
  preprocess: PreprocessConfig;
}

export interface MuscEncoded {
  /** [images, layers, N, width] */
  tokens: Float32Array;
  /** [images, dim] */
  embeds: Float32Array;
  encodeMs: number;
}

export interface MuscScorePayload {
  /** [images, layers, h·w, width]: the queries first, then the known-normal images. */
  tokens: Float32Array;
  embeds: Float32Array;
  images: number;
  layers: number;
  grid: number;
  width: number;
  embedDim: number;
  /** The model input size S (map scores are maxima of the map upsampled to S×S). */
  imageSize: number;
  /** The first queries.length images: each one's size (its map's size) and region threshold. */
  queries: Array<{ width: number; height: number; threshold: number }>;
}

/** ScoreImageOutcome: grid.full and grid.fused are both the normalised MuSc grid map. */
export type MuscOutcome = ScoreImageOutcome & {
  /** The raw MuSc image score (max of the upsampled distance map), before RsCIN. */
  mapScore: number;
};

async function encodeTask(ctx: WorkerContext, p: MuscEncodePayload) {
  const t0 = performance.now();
  const S = p.preprocess.size;
  const tokens: Float32Array[] = [];
  const embeds: Float32Array[] = [];
  for (let from = 0; from < p.images.length; from += RUN_IMAGES) {
    const chunk = p.images.slice(from, from + RUN_IMAGES);
    const pixels = toPixelValues(chunk, p.preprocess);
    const out = await ctx.infer(MUSC_GRAPH, { pixel_values: { type: 'float32', data: pixels, dims: [chunk.length, 3, S, S] } });
    tokens.push(out.musc_tokens.data);
    embeds.push(out.image_embeds.data);
  }
  const result: MuscEncoded = { tokens: concat(tokens), embeds: concat(embeds), encodeMs: performance.now() - t0 };
  return { result, transfer: [result.tokens.buffer as ArrayBuffer, result.embeds.buffer as ArrayBuffer] };
}

function concat(parts: Float32Array[]): Float32Array {
  if (parts.length === 1 && parts[0].byteOffset === 0 && parts[0].byteLength === parts[0].buffer.byteLength) return parts[0];
  const out = new Float32Array(parts.reduce((n, a) => n + a.length, 0));
  let at = 0;
  for (const a of parts) {
    out.set(a, at);
    at += a.length;
  }
  return out;
}

async function scoreTask(_ctx: WorkerContext, p: MuscScorePayload) {
  const t0 = performance.now();
  const grid = { h: p.grid, w: p.grid };
  const scored = scoreMusc(
    { tokens: p.tokens, images: p.images, layers: p.layers, grid, width: p.width, imageEmbeds: p.embeds, embedDim: p.embedDim },
    { imageSize: p.imageSize },
  );
  // The maps are distances (≥ 0, unbounded): the API's maps are 0–1, so they are min–max
  // normalised over every map of the batch (known normals included) — batch-relative, like the score.
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of scored.maps) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const span = hi > lo ? hi - lo : 1;
  const L = p.grid * p.grid;
  const scoreMs = performance.now() - t0;
  const results: MuscOutcome[] = p.queries.map((q, i) => {
    const gridMap = new Float32Array(L);
    for (let j = 0; j < L; j++) gridMap[j] = (scored.maps[i * L + j] - lo) / span;
    const map = resizeBilinear(plane(p.grid, p.grid, gridMap), q.width, q.height).data;
    return {
      // RsCIN's refined score (from raw scores min–max normalised over the batch: 0–1, batch-relative);
      // scored.mapScores are the raw ones (max of the upsampled distance map), kept as mapScore.
      score: scored.scores[i],
      pImage: scored.scores[i],
      mapScore: scored.mapScores[i],
      map,
      grid: { full: gridMap, fused: gridMap },
      regions: findRegions(map, q.width, q.height, q.threshold),
      encodeMs: 0,
      scoreMs,
    };
  });
  return { result: results, transfer: results.map((r) => r.map.buffer as ArrayBuffer) };
}

export const tasks: Record<string, TaskHandler> = { [MUSC_ENCODE_TASK]: encodeTask, [MUSC_SCORE_TASK]: scoreTask };
