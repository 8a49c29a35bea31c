// From CLIP outputs to a result: image probability, per-branch grid maps averaged over layers,
// the fused grid map, the image score and the fused map at the original image size.

import { defaultBranchSettings, multiLayerBranchMaps, type BranchMaps, type BranchMapsOptions, type BranchSettings, type BranchText } from './branches.ts';
import {
  defaultFusionWeights,
  defaultImageScoreSettings,
  fuseMaps,
  imageScore,
  topKMean,
  type FusionWeights,
  type ImageScoreSettings,
} from './fusion.ts';
import { plane } from '../../imaging/plane.ts';
import { DEFAULT_SIGMA, resizeAndBlur } from '../../imaging/resample-maps.ts';
import { imageProbability } from '../../scoring/similarity.ts';

export interface ScoringSettings extends BranchSettings {
  /** Weights of the full, high and low maps in the fused map (ignored when branches are off). */
  fusion: FusionWeights;
  /**
   * Gaussian smoothing sigma in pixels at the model input size (AnomalyCLIP: 4 px at 518).
   * The map is produced at the original image size, so it is scaled by
   * max(width, height) / inputSize: the same blur relative to the image content whatever the
   * upload resolution. 0 disables smoothing.
   */
  sigma: number;
  /** How the image probability and the map combine into the image score. */
  imageScore: ImageScoreSettings;
}

export const defaultScoringSettings: ScoringSettings = {
  ...defaultBranchSettings,
  fusion: defaultFusionWeights,
  sigma: DEFAULT_SIGMA,
  imageScore: defaultImageScoreSettings,
};

/** Partial settings, nested groups partial too (e.g. from a request body). */
export type ScoringSettingsOverrides = {
  [K in keyof ScoringSettings]?: ScoringSettings[K] extends object ? Partial<ScoringSettings[K]> : ScoringSettings[K];
};

/** Defaults with `overrides` merged in (one level deep), checked for ranges. */
export function resolveScoringSettings(overrides: ScoringSettingsOverrides = {}): ScoringSettings {
  const d = defaultScoringSettings;
  const s: ScoringSettings = {
    temperature: overrides.temperature ?? d.temperature,
    branches: overrides.branches ?? d.branches,
    cutoff: overrides.cutoff ?? d.cutoff,
    fsam: { ...d.fsam, ...overrides.fsam },
    gscm: { ...d.gscm, ...overrides.gscm },
    fusion: { ...d.fusion, ...overrides.fusion },
    sigma: overrides.sigma ?? d.sigma,
    imageScore: { ...d.imageScore, ...overrides.imageScore },
  };
  const positive: Array<[string, number]> = [
    ['temperature', s.temperature],
    ['cutoff', s.cutoff],
    ['fsam.tau', s.fsam.tau],
    ['gscm.tau', s.gscm.tau],
  ];
  for (const [name, v] of positive) if (!(v > 0 && Number.isFinite(v))) throw new RangeError(`${name} must be > 0, got ${v}`);
  if (!(s.sigma >= 0 && Number.isFinite(s.sigma))) throw new RangeError(`sigma must be >= 0, got ${s.sigma}`);
  if (!Number.isInteger(s.fsam.k) || s.fsam.k < 1 || s.fsam.k % 2 === 0) throw new RangeError(`fsam.k must be odd, got ${s.fsam.k}`);
  if (!Number.isInteger(s.gscm.keyPool) || s.gscm.keyPool < 1) throw new RangeError(`gscm.keyPool must be an integer >= 1, got ${s.gscm.keyPool}`);
  if (!Number.isFinite(s.fsam.beta)) throw new RangeError(`fsam.beta must be finite, got ${s.fsam.beta}`);
  const w = s.fusion;
  if (![w.full, w.high, w.low].every((v) => v >= 0 && Number.isFinite(v)) || w.full + w.high + w.low === 0) {
    throw new RangeError('fusion weights must be >= 0 and not all 0');
  }
  const { alpha, topKPercent } = s.imageScore;
  if (!(alpha >= 0 && alpha <= 1)) throw new RangeError(`imageScore.alpha must be in [0, 1], got ${alpha}`);
  if (!(topKPercent > 0 && topKPercent <= 100)) throw new RangeError(`imageScore.topKPercent must be in (0, 100], got ${topKPercent}`);
  return s;
}

/** Smoothing sigma at the output size for a sigma given at the model input size. */
export function outputSigma(sigma: number, width: number, height: number, inputSize: number): number {
  if (!(inputSize > 0)) throw new RangeError(`inputSize must be > 0, got ${inputSize}`);
  return (sigma * Math.max(width, height)) / inputSize;
}

/** What the image tower gives for one image (the training feature cache stores the same). */
export interface ImageEncoding {
  /** Projected image embedding [dim]. */
  imageEmbed: Float32Array;
  /** Projected dense patch features [layers, gridH*gridW, dim], row index = y*gridW + x. */
  dense: Float32Array;
  layers: number;
  gridH: number;
  gridW: number;
  dim: number;
}

export interface ScoreImageInput extends ImageEncoding {
  text: BranchText;
  /** Original image size: the returned map has exactly width × height values. */
  width: number;
  height: number;
  /** Side of the square model input (e.g. 224, 336, 518); scales `settings.sigma`. */
  inputSize: number;
  settings: ScoringSettings;
  /** Few-shot part (patch-memory.ts): its grid map and its weight in the fused map and score. */
  fewShot?: { grid: Float32Array; weight: number };
  /** The branch maps already computed by the scoring graph (scoring-graph.ts) for these features and settings. */
  maps?: BranchMaps;
}

export interface GridMaps {
  full: Float32Array;
  high?: Float32Array;
  low?: Float32Array;
  /** Distance to the category's normal reference patches (with stored references). */
  fewShot?: Float32Array;
  fused: Float32Array;
}

export interface ScoreImageResult {
  /** Fused image score in [0, 1]. */
  score: number;
  /** Zero-shot probability of the image embedding. */
  pImage: number;
  /** [gridH*gridW] maps averaged over layers; high/low only when branches are on. */
  grid: GridMaps;
  /** Fused map upsampled to [height, width] and smoothed. */
  map: Float32Array;
  /** The image score each part alone would give (branches on, or few-shot), for evaluation sweeps and branches=true. */
  branchImageScores?: { full?: number; high?: number; low?: number; fewShot?: number };
}

/** The grid part of the scoring: the image probability, the branch maps averaged over layers and the fused map. */
export interface GridScores {
  pImage: number;
  maps: BranchMaps;
  fused: Float32Array;
}

/**
 * scoreImage up to the fused grid map. Training's forward pass (src/training/forward.ts) runs
 * it too, with `options.layerBuffers` to keep each layer's intermediates for its backward pass.
 */
export function scoreGrid(
  encoding: ImageEncoding,
  text: BranchText,
  settings: ScoringSettings,
  options: BranchMapsOptions & { maps?: BranchMaps } = {},
): GridScores {
  const { imageEmbed, dense, layers, gridH, gridW, dim } = encoding;
  const image = text.image ?? text.full;
  const pImage = imageProbability(imageEmbed, image.normal, image.abnormal, settings.temperature);
  const maps = options.maps ?? multiLayerBranchMaps(dense, layers, gridH, gridW, dim, text, settings, options);
  // Without branches the fused map is the full map, whatever the weights say.
  const fused = settings.branches ? fuseMaps(maps, settings.fusion) : Float32Array.from(maps.full);
  return { pImage, maps, fused };
}

export function scoreImage(input: ScoreImageInput): ScoreImageResult {
  const { imageEmbed, gridH, gridW, dim, text, width, height, inputSize, settings } = input;
  if (imageEmbed.length !== dim) throw new RangeError(`imageEmbed has ${imageEmbed.length} values, expected ${dim}`);
  for (const [name, v] of [['gridH', gridH], ['gridW', gridW], ['width', width], ['height', height]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`${name} must be a positive integer, got ${v}`);
  }

  const { pImage, maps, fused: zeroShot } = scoreGrid(input, text, settings, { maps: input.maps });
  let fused = zeroShot;
  let score = imageScore(pImage, zeroShot, settings.imageScore);
  let fewShotScore: number | undefined;
  if (input.fewShot) {
    // map = (1 − w)·zero-shot + w·few-shot; score likewise, the few-shot part's from the top of its map.
    const { grid, weight: w } = input.fewShot;
    if (grid.length !== zeroShot.length) throw new RangeError(`fewShot grid has ${grid.length} values, expected ${zeroShot.length}`);
    fused = zeroShot.map((v, i) => (1 - w) * v + w * grid[i]);
    fewShotScore = topKMean(grid, settings.imageScore.topKPercent);
    score = (1 - w) * score + w * fewShotScore;
  }

  let branchImageScores: ScoreImageResult['branchImageScores'];
  if (maps.high !== undefined && maps.low !== undefined) {
    branchImageScores = {
      full: imageScore(pImage, maps.full, settings.imageScore),
      high: imageScore(pImage, maps.high, settings.imageScore),
      low: imageScore(pImage, maps.low, settings.imageScore),
    };
  }

  const sigma = outputSigma(settings.sigma, width, height, inputSize);
  const map = resizeAndBlur(plane(gridW, gridH, fused), width, height, sigma).data;

  const grid: GridMaps = { full: maps.full, fused };
  if (maps.high !== undefined) grid.high = maps.high;
  if (maps.low !== undefined) grid.low = maps.low;
  if (input.fewShot) {
    grid.fewShot = input.fewShot.grid;
    branchImageScores = { ...branchImageScores, fewShot: fewShotScore };
  }
  const result: ScoreImageResult = { score, pImage, grid, map };
  if (branchImageScores !== undefined) result.branchImageScores = branchImageScores;
  return result;
}
