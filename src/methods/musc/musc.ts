// MuSc end to end on one batch's graph outputs (features.ts), pure and synchronous:
// per layer, LNAMD's LayerNorm and norms (prepareMsmLayer) → MSM for every r from one Gram
// matrix per image pair (MutualScorer) → the interval average (topMinMeans) → mean over layers,
// then over r (aggregate.ts) → image score = max of the upsampled map → RsCIN (rscin.ts).
// The same loop as models/musc.py make_category_data(), with the r loop moved inside the pairs.
//
// Threads: MuscBatch holds the batch-wide state; a caller with worker threads gives each worker
// a MutualScorer, sends it each MsmLayer and an owner range, lets them write into one
// SharedArrayBuffer result (MuscBatch.distances), then calls addLayer(). Results are
// bit-identical to scoreMusc() for any split (msm.ts).

import { validateMuscFeatures, type MuscFeatures, type PatchGrid } from './features.ts';
import { meanOverLayersAndDegrees, upsampledMax } from './aggregate.ts';
import { checkDegree, MUSC_R_LIST } from './lnamd.ts';
import { assertEnoughImages, MuscInputError, topMinCount } from './min-images.ts';
import { minDistanceLength, MutualScorer, prepareMsmLayer, topMinMeans, type MsmLayer } from './msm.ts';
import { RSCIN_K_DEFAULT, rscin } from './rscin.ts';

export interface MuscOptions {
  /** S, the square model input size: image scores are maxima of the map upsampled to S×S. */
  imageSize: number;
  /** Aggregation degrees r (configs/musc.yaml r_list); default [1, 3, 5]. */
  degrees?: readonly number[];
  /** RsCIN's k list (rscin.ts); default [1, 2, 3]; a 0 switches RsCIN off. */
  rscinK?: readonly number[];
  /** Grid rows of the query image per matmul chunk (msm.ts defaultBandRows). */
  bandRows?: number;
}

export interface MuscResult {
  grid: PatchGrid;
  /** [N, h·w]: mean over layers, then over r, of the MSM patch scores (distances, ≥ 0). */
  maps: Float64Array;
  /** [N]: max of each map upsampled to imageSize² (align_corners=True). */
  mapScores: Float64Array;
  /** [N]: RsCIN-refined mapScores in [0, 1]; equal to mapScores when RsCIN is off or no embeddings. */
  scores: Float64Array;
}

/** The batch-wide part of a MuSc run: the result buffer and the per-degree sums over layers. */
export class MuscBatch {
  /** [R][N][L][N] float32: d_j(i, p) of the current layer (msm.ts). */
  readonly distances: Float32Array;
  readonly degrees: number[];
  readonly k: number;
  private readonly sums: Float64Array[];
  private readonly scratch: Float64Array[];
  private layersDone = 0;

  /** distances: [R][N][L][N] float32 (msm.ts); pass a SharedArrayBuffer view to share it. */
  constructor(
    readonly features: MuscFeatures,
    readonly options: MuscOptions,
    distances?: Float32Array,
  ) {
    validateMuscFeatures(features);
    assertEnoughImages(features.images);
    if (!Number.isInteger(options.imageSize) || options.imageSize < 1) throw new MuscInputError(`imageSize must be a positive integer, got ${options.imageSize}`);
    this.degrees = [...(options.degrees ?? MUSC_R_LIST)];
    if (this.degrees.length === 0) throw new MuscInputError('at least one aggregation degree is needed');
    this.degrees.forEach(checkDegree);
    this.k = topMinCount(features.images);
    const size = features.images * features.grid.h * features.grid.w;
    this.sums = this.degrees.map(() => new Float64Array(size));
    this.scratch = this.degrees.map(() => new Float64Array(size));
    const length = this.degrees.length * size * features.images;
    this.distances = distances ?? new Float32Array(length);
    if (this.distances.length !== length) throw new RangeError(`distances has ${this.distances.length} values, expected ${length}`);
  }

  /** Layer `layer` ready for MutualScorer.setLayer (any thread); `normed` as in prepareMsmLayer. */
  layer(layer: number, normed?: Float32Array): MsmLayer {
    return prepareMsmLayer(this.features, layer, this.degrees, normed);
  }

  /** After every owner range of layer `layer` has been written into `distances`: its interval averages. */
  addLayer(layer: number): void {
    if (layer !== this.layersDone) throw new RangeError(`layers must be added in order: expected ${this.layersDone}, got ${layer}`);
    const { images, grid } = this.features;
    topMinMeans(this.distances, images, grid.h * grid.w, this.k, 0, images, this.scratch);
    for (let d = 0; d < this.degrees.length; d++) {
      const sum = this.sums[d];
      const add = this.scratch[d];
      for (let i = 0; i < sum.length; i++) sum[i] += add[i];
    }
    this.layersDone++;
  }

  /** After every layer: maps, map scores and RsCIN scores. */
  finish(): MuscResult {
    const { features, options } = this;
    if (this.layersDone !== features.layers) throw new Error(`finish() after ${this.layersDone} of ${features.layers} layers`);
    const { images, grid } = features;
    const L = grid.h * grid.w;
    const maps = meanOverLayersAndDegrees(this.sums, features.layers);
    const mapScores = new Float64Array(images);
    for (let i = 0; i < images; i++) mapScores[i] = upsampledMax(maps.subarray(i * L, (i + 1) * L), grid, options.imageSize);
    const scores = rscin(mapScores, features.imageEmbeds, features.embedDim ?? 0, options.rscinK ?? RSCIN_K_DEFAULT);
    return { grid, maps, mapScores, scores };
  }
}

/** Length of MuscBatch.distances for a batch (to allocate a SharedArrayBuffer of 4× this many bytes). */
export function muscDistanceLength(features: Pick<MuscFeatures, 'images' | 'grid'>, degrees: readonly number[] = MUSC_R_LIST): number {
  return minDistanceLength({ images: features.images, grid: features.grid, degrees: [...degrees] });
}

/**
 * MuSc on one thread. features: [N, layers, h·w, width] tokens (+ [N, dim] embeddings for RsCIN);
 * throws MuscTooFewImagesError below MUSC_MIN_IMAGES images.
 */
export function scoreMusc(features: MuscFeatures, options: MuscOptions, scorer: MutualScorer = new MutualScorer(options.bandRows)): MuscResult {
  const batch = new MuscBatch(features, options);
  for (let l = 0; l < features.layers; l++) {
    scorer.setLayer(batch.layer(l));
    scorer.minDistances(0, features.images, batch.distances);
    batch.addLayer(l);
  }
  return batch.finish();
}
