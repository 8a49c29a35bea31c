// Few-shot patch memory of the dense-frequency method (method.md §8, WinCLIP+ / AnomalyDINO
// style): the dense patch features of a category's normal reference images, per scored layer.
// A query patch's few-shot anomaly is its distance to the nearest memory patch of the same
// layer, (1 − cos) / 2, averaged over the layers.
//
// The nearest-neighbour search is one MatMul + ReduceMax, run as a tiny ONNX graph in the
// inference worker (`patch-knn`): at 64 references that is 3 layers × 196 × 12,544 × 512 ≈ 3.8
// GFLOP, ~20 ms in ONNX Runtime against seconds in JavaScript loops. The memory lives on a
// SharedArrayBuffer, so posting it to a worker copies nothing; ONNX Runtime refuses shared
// buffers as inputs, so each worker keeps one private copy per memory (`key`) it has seen.
import type { GraphSpec } from '../../clip/onnx/graph-cache.ts';
import { GraphBuilder } from '../../clip/onnx/graph-builder.ts';
import { packHalf, unpackHalf } from '../../util/half.ts';

export const PATCH_KNN_GRAPH = 'patch-knn';

/** patch-knn: query [L, N, D] (unit rows) · memory [L, D, M] (unit columns) → max cosine [L, N]. */
export function patchKnnGraphSpec(): GraphSpec {
  return {
    name: PATCH_KNN_GRAPH,
    options: { version: 1 },
    build(_weights, file) {
      GraphBuilder.write(file, 'patch_knn', (g) => {
        const query = g.input('query', 'float32', ['layers', 'patches', 'dim']);
        const memory = g.input('memory', 'float32', ['layers', 'dim', 'memory']);
        const best = g.op('ReduceMax', [g.op('MatMul', [query, memory])], { axes: [2], keepdims: 0 });
        g.output(best, 'nearest_cosine', 'float32', ['layers', 'patches']);
        return 'nearest memory patch per query patch and layer (cosine)';
      });
    },
  };
}

/** How one reference's features are laid out in the store. */
export interface PatchFeatureShape {
  format: 'dense-frequency/1';
  layers: number;
  patches: number;
  dim: number;
  /** Augmented views of the reference (1 without augmentation). */
  views: number;
}

/** Unit-length copies of `rows` vectors of `dim` values. */
export function normalizeRows(values: Float32Array, dim: number): Float32Array {
  const out = new Float32Array(values.length);
  for (let r = 0; r < values.length / dim; r++) {
    let ss = 0;
    for (let k = 0; k < dim; k++) ss += values[r * dim + k] ** 2;
    const inv = 1 / Math.sqrt(ss || 1);
    for (let k = 0; k < dim; k++) out[r * dim + k] = values[r * dim + k] * inv;
  }
  return out;
}

/**
 * One reference's stored features: per view, its dense features [layers, patches, dim] with unit
 * rows, as fp16. `dense` holds `views` images' features back to back.
 */
export function packPatchFeatures(dense: Float32Array, shape: PatchFeatureShape): Buffer {
  const per = shape.layers * shape.patches * shape.dim;
  if (dense.length !== per * shape.views) throw new RangeError(`packPatchFeatures: ${dense.length} values, expected ${per * shape.views}`);
  return packHalf(normalizeRows(dense, shape.dim));
}

export interface PatchMemory {
  /** Names this memory's content (category, version): a worker's private copy is found by it. */
  key: string;
  /** [layers, dim, count] on a SharedArrayBuffer: column m is memory patch m. */
  memory: Float32Array;
  layers: number;
  dim: number;
  /** Memory patches per layer. */
  count: number;
  /** Reference images in it. */
  references: number;
}

/** The memory of a category from its references' stored features (all of one shape). */
export function buildPatchMemory(records: ReadonlyArray<{ shape: PatchFeatureShape; data: Buffer }>, layers: number, patches: number, dim: number, key: string): PatchMemory {
  for (const r of records) {
    const s = r.shape;
    if (s.format !== 'dense-frequency/1' || s.layers !== layers || s.patches !== patches || s.dim !== dim) {
      throw new Error(`stored features of shape ${JSON.stringify(s)} do not fit this model (${layers} layers, ${patches} patches, ${dim} dims)`);
    }
  }
  const count = records.reduce((n, r) => n + r.shape.views * patches, 0);
  const memory = new Float32Array(new SharedArrayBuffer(layers * dim * count * 4));
  let column = 0;
  const scratch = new Float32Array(layers * patches * dim);
  for (const r of records) {
    for (let v = 0; v < r.shape.views; v++) {
      unpackHalf(r.data.subarray(v * scratch.length * 2, (v + 1) * scratch.length * 2), scratch);
      // [L, N, D] rows → [L, D, M] columns.
      for (let l = 0; l < layers; l++) {
        const base = l * dim * count;
        for (let n = 0; n < patches; n++) {
          const src = (l * patches + n) * dim;
          for (let d = 0; d < dim; d++) memory[base + d * count + column + n] = scratch[src + d];
        }
      }
      column += patches;
    }
  }
  return { key, memory, layers, dim, count, references: records.length };
}

/** Few-shot grid map [patches]: mean over layers of (1 − nearest cosine) / 2, in [0, 1]. */
export function fewShotGrid(nearestCosine: Float32Array, layers: number, patches: number): Float32Array {
  const out = new Float32Array(patches);
  for (let l = 0; l < layers; l++) {
    for (let n = 0; n < patches; n++) out[n] += (1 - nearestCosine[l * patches + n]) / 2 / layers;
  }
  for (let n = 0; n < patches; n++) out[n] = Math.min(1, Math.max(0, out[n]));
  return out;
}
