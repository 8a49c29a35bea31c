// Small random training cases for the unit tests (no model needed): features with a shared
// component (as CLIP features have), text pairs as CLIP gives them (normal and abnormal close).
import type { ScoringSettings } from '../../src/methods/dense-frequency/pipeline.ts';
import { ParameterSpace, TEXT_PAIRS, type ParameterBase } from '../../src/training/parameters.ts';
import { seededRandom } from '../../src/util/rng.ts';
import { prepareSample, type TrainingSample } from '../../src/training/sample.ts';

export function gaussian(random: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
}

export function unitVector(dim: number, random: () => number): Float32Array {
  const v = Float32Array.from({ length: dim }, () => gaussian(random));
  const norm = Math.hypot(...v);
  return v.map((x) => x / norm);
}

/** A normal/abnormal pair close to each other (cosine ≈ 0.95). */
export function textPair(dim: number, random: () => number) {
  const normal = unitVector(dim, random);
  const offset = unitVector(dim, random);
  const abnormal = normal.map((x, k) => x + 0.3 * offset[k]);
  return { normal, abnormal: abnormal.map((x) => x / Math.hypot(...abnormal)) };
}

/**
 * One image: random features; a defective one has a 2×2-patch defect in its mask, and with
 * `defect` those patches (and its image embedding) carry that direction.
 */
export function randomSample(
  random: () => number,
  label: 0 | 1,
  grid: number,
  dim: number,
  layers: number,
  maskSize: number,
  cutoff: number,
  defect?: Float32Array,
): TrainingSample {
  const shared = unitVector(dim, random);
  const dense = new Float32Array(layers * grid * grid * dim);
  for (let i = 0; i < dense.length; i++) dense[i] = 0.3 * shared[i % dim] + 0.5 * gaussian(random);
  const mask = new Uint8Array(maskSize * maskSize);
  const scale = maskSize / grid;
  if (label) {
    // Patches (1..2, 1..2) are defective; the mask covers exactly their pixels.
    for (let y = scale; y < 3 * scale; y++) for (let x = scale; x < 3 * scale; x++) mask[y * maskSize + x] = 1;
    if (defect) {
      for (let l = 0; l < layers; l++) {
        for (const [py, px] of [[1, 1], [1, 2], [2, 1], [2, 2]]) {
          const base = (l * grid * grid + py * grid + px) * dim;
          for (let k = 0; k < dim; k++) dense[base + k] += 1.5 * defect[k];
        }
      }
    }
  }
  const imageEmbed = unitVector(dim, random);
  if (defect) {
    // With a defect direction, image embeddings share an "object" part and a defective
    // image's leans toward the defect: learnable from a few images, as CLIP's would be.
    const object = unitVector(dim, seededRandom(98));
    for (let k = 0; k < dim; k++) imageEmbed[k] = 0.5 * imageEmbed[k] + object[k] + (label ? 1.5 * defect[k] : 0);
  }
  return prepareSample({ imageEmbed, dense, layers, gridH: grid, gridW: grid, dim, mask, maskSize, label }, cutoff);
}

export function randomSpace(dim: number, scoring: ScoringSettings, random: () => number): ParameterSpace {
  const base: ParameterBase = {
    dim,
    text: Object.fromEntries(TEXT_PAIRS.map((p) => [p, textPair(dim, random)])) as ParameterBase['text'],
    scoring,
  };
  return new ParameterSpace(base);
}
