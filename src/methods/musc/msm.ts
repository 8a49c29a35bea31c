// MSM, the Mutual Scoring Mechanism (models/modules/_MSM.py), per layer and aggregation degree r:
//   d_j(i, p) = min_q ‖z_{i,p} − z_{j,q}‖₂   for every other image j   (torch.cdist, p = 2)
//   score(i, p) = mean of the k smallest d_j(i, p) over j ≠ i,  k = int((N − 1)·0.3)
// (compute_scores_fast(): cdist → min over the other image's patches → topk(k, largest=False) →
// the second topk keeps all k because topmin_min = 0 → mean). z are LNAMD's unit vectors, so
// ‖z − z'‖ = sqrt(2 − 2·cos) (cdist's value for unit vectors); the cosines come from
// pair-engine.ts, whose one Gram matrix per image pair serves every r and gives both d_j(i, ·)
// and d_i(j, ·) (the authors compute each pair twice, once from each side).
//
// Memory: per thread (pair-engine.ts) 4·N·⌈L/8⌉·8·C bytes of packed features, one band of Gram
// rows and O(L·C) scratch; never the authors' L × (N−1) × L distances. The result buffer holds
// only what the top-k needs after the min-reduction: [R][N][L][N] float32, 4·R·N²·L bytes.
//
// Splitting: every unordered pair {i, j} has exactly one owner image (ownedPartners), so any
// partition of [0, N) into owner ranges covers each pair once, and every result slot is written
// by exactly one pair. Which image of a pair plays A is decided by content (MsmLayer.rank), not
// by index, so a permuted batch computes the very same pairs: the results are bit-identical for
// any thread split, band size or upload order.

import { layerTokens, type MsmLayer, type MuscFeatures, type PatchGrid } from './features.ts';

export type { MsmLayer };
import { PairEngine } from './pair-engine.ts';
import { checkDegree, layerNormImage } from './lnamd.ts';
import { MuscInputError } from './min-images.ts';

/** One layer of a batch, ready for mutual scoring. Structured-cloneable (for worker threads). */
/**
 * LayerNorm of one layer of the batch ([N, L, C] tokens → MsmLayer). `normed` ([N·L·C]) may be a
 * SharedArrayBuffer view, so that worker threads receive the layer without a copy.
 */
export function prepareMsmLayer(features: MuscFeatures, layer: number, degrees: readonly number[], normed?: Float32Array): MsmLayer {
  degrees.forEach(checkDegree);
  if (!(layer >= 0 && layer < features.layers)) throw new MuscInputError(`layer ${layer} outside [0, ${features.layers})`);
  const { images, grid, width } = features;
  const L = grid.h * grid.w;
  normed ??= new Float32Array(images * L * width);
  if (normed.length !== images * L * width) throw new RangeError(`normed has ${normed.length} values, expected ${images * L * width}`);
  for (let i = 0; i < images; i++) layerNormImage(layerTokens(features, i, layer), normed.subarray(i * L * width, (i + 1) * L * width));
  return { images, grid, channels: width, degrees: [...degrees], normed, rank: contentRank(normed, images) };
}

function contentRank(normed: Float32Array, images: number): Int32Array {
  const bits = new Uint32Array(normed.buffer, normed.byteOffset, normed.length);
  const per = normed.length / images;
  const compare = (a: number, b: number): number => {
    for (let k = 0, oa = a * per, ob = b * per; k < per; k++) {
      if (bits[oa + k] !== bits[ob + k]) return bits[oa + k] < bits[ob + k] ? -1 : 1;
    }
    return 0; // identical images: either can be A, the results are the same
  };
  const order = Array.from({ length: images }, (_, i) => i).sort(compare);
  const rank = new Int32Array(images);
  order.forEach((image, position) => (rank[image] = position));
  return rank;
}

/** The images j whose pair {i, j} image i owns: i+1, i+2, … (mod N), half the ring each. */
export function ownedPartners(images: number, owner: number): number[] {
  const out: number[] = [];
  for (let s = 1; s <= Math.floor((images - 1) / 2); s++) out.push((owner + s) % images);
  if (images % 2 === 0 && owner < images / 2) out.push(owner + images / 2);
  return out;
}

/**
 * Owner ranges [from, to) for `parts` threads with about the same number of pairs each
 * (owners below N/2 own one pair more when N is even).
 */
export function balancedOwnerRanges(images: number, parts: number): Array<{ from: number; to: number }> {
  const total = (images * (images - 1)) / 2;
  const ranges: Array<{ from: number; to: number }> = [];
  let from = 0;
  let done = 0;
  for (let t = 1; t <= parts; t++) {
    let to = from;
    const target = (total * t) / parts;
    while (to < images && (t === parts || done + ownedPartners(images, to).length / 2 <= target)) done += ownedPartners(images, to++).length;
    ranges.push({ from, to });
    from = to;
  }
  return ranges;
}

/** Size of the MSM result buffer, [R][N][L][N] float32 (slot j = i unused). */
export function minDistanceLength(layer: Pick<MsmLayer, 'images' | 'grid' | 'degrees'>): number {
  return layer.degrees.length * layer.images * layer.grid.h * layer.grid.w * layer.images;
}

/** Index of d_j(i, p) for degree index d in the result buffer. */
export function minDistanceIndex(images: number, patches: number, d: number, i: number, p: number, j: number): number {
  return ((d * images + i) * patches + p) * images + j;
}

/** Default band: whole grids up to 32×32 patches (one pass), else 16 grid rows (≤ 25 % halo rework). */
export function defaultBandRows(grid: PatchGrid): number {
  return grid.h * grid.w <= 1024 ? grid.h : 16;
}

/** One thread's MSM engine: its own WebAssembly memory with the current layer's features. */
export class MutualScorer {
  private readonly engine = new PairEngine();
  private layer: MsmLayer | undefined;

  /** bandRows: grid rows of the query image per matmul chunk (default defaultBandRows). */
  constructor(private readonly bandRows?: number) {}

  setLayer(layer: MsmLayer): void {
    this.engine.load(layer, this.bandRows ?? defaultBandRows(layer.grid));
    this.layer = layer;
  }

  /**
   * d_j(i, ·) and d_i(j, ·) for every pair owned by an image in [from, to), written into `out`
   * ([R][N][L][N], minDistanceLength; may be a view of a SharedArrayBuffer shared by threads).
   */
  minDistances(from: number, to: number, out: Float32Array): void {
    const layer = this.layer;
    if (!layer) throw new Error('MutualScorer.minDistances before setLayer');
    const { images, grid, degrees, rank } = layer;
    const L = grid.h * grid.w;
    if (out.length !== minDistanceLength(layer)) throw new RangeError(`out has ${out.length} values, expected ${minDistanceLength(layer)}`);
    if (!(from >= 0 && from <= to && to <= images)) throw new RangeError(`owner range [${from}, ${to}) outside [0, ${images})`);
    for (let owner = from; owner < to; owner++) {
      for (const partner of ownedPartners(images, owner)) {
        const [a, b] = rank[owner] < rank[partner] ? [owner, partner] : [partner, owner];
        const { rowMax, colMax } = this.engine.pair(a, b);
        for (let d = 0; d < degrees.length; d++) {
          const rows = rowMax[d];
          const cols = colMax[d];
          for (let p = 0; p < L; p++) {
            out[minDistanceIndex(images, L, d, a, p, b)] = Math.sqrt(Math.max(0, 2 - 2 * rows[p]));
            out[minDistanceIndex(images, L, d, b, p, a)] = Math.sqrt(Math.max(0, 2 - 2 * cols[p]));
          }
        }
      }
    }
  }
}

/**
 * MSM's interval average for the images in [from, to): into[d][i·L + p] = mean of the k smallest
 * d_j(i, p), j ≠ i, summed in ascending order (float64; the authors' mean is float32).
 */
export function topMinMeans(dist: Float32Array, images: number, patches: number, k: number, from: number, to: number, into: Float64Array[]): void {
  if (!(k >= 1 && k <= images - 1)) throw new RangeError(`k = ${k} outside [1, ${images - 1}]`);
  const scratch = new Float32Array(images - 1);
  for (let d = 0; d < into.length; d++) {
    for (let i = from; i < to; i++) {
      for (let p = 0; p < patches; p++) {
        const o = minDistanceIndex(images, patches, d, i, p, 0);
        for (let j = 0, t = 0; j < images; j++) if (j !== i) scratch[t++] = dist[o + j];
        scratch.sort();
        let s = 0;
        for (let t = 0; t < k; t++) s += scratch[t];
        into[d][i * patches + p] = s / k;
      }
    }
  }
}
