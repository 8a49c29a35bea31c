// Per-branch anomaly maps of the dense patch features (method.md §5): the full features, the
// FSAM-enhanced high-frequency part and the GSCM-contextualised low-frequency part are each
// scored against their own text pair, per layer, and averaged over layers (method.md §4).

import { DEFAULT_CUTOFF, splitFrequency } from './frequency.ts';
import { defaultFsamSettings, fsam, type FsamSettings, type FsamTrace } from './fsam.ts';
import { defaultGscmSettings, gscm, type GscmBuffers, type GscmSettings } from './gscm.ts';
import { DEFAULT_TEMPERATURE, patchProbabilities } from '../../scoring/similarity.ts';
import type { LayeredFeatureGrid } from '../../imaging/plane.ts';

/** Class text embeddings ([D] each) of one prompt pair. */
export interface TextPair {
  normal: Float32Array;
  abnormal: Float32Array;
}

/**
 * Text per branch: learned prompts may differ per branch; templated prompts use the same pair
 * everywhere (`uniformBranchText`). `image` scores the image embedding; it defaults to `full`.
 */
export interface BranchText {
  full: TextPair;
  high: TextPair;
  low: TextPair;
  image?: TextPair;
}

/** The same pair for every branch and the image (templated mode). */
export function uniformBranchText(pair: TextPair): BranchText {
  return { full: pair, high: pair, low: pair, image: pair };
}

/** Anomaly probability per patch ([N] each); high and low are absent when branches are off. */
export interface BranchMaps {
  full: Float32Array;
  high?: Float32Array;
  low?: Float32Array;
}

export interface BranchSettings {
  /** Softmax temperature of the normal/abnormal decision (similarity.ts). */
  temperature: number;
  /** Compute the high and low branches; false scores the full features only. */
  branches: boolean;
  /** Gaussian low-pass radius as a fraction of Nyquist (frequency.ts). */
  cutoff: number;
  fsam: FsamSettings;
  gscm: GscmSettings;
}

export const defaultBranchSettings: BranchSettings = {
  temperature: DEFAULT_TEMPERATURE,
  branches: true,
  cutoff: DEFAULT_CUTOFF,
  fsam: defaultFsamSettings,
  gscm: defaultGscmSettings,
};

/**
 * What one layer's branch scoring (scoreLayer) writes into. multiLayerBranchMaps reuses one set
 * for every layer; the training forward pass (src/training/forward.ts) gives each layer its own
 * set and keeps it, because its backward pass reads these intermediates.
 */
export interface LayerBuffers extends GscmBuffers {
  /** splitFrequency of the layer's features: written here, or read from here with `splitGiven`. */
  low: Float32Array;
  high: Float32Array;
  /** True: low and high already hold the split (training splits each image once; the cutoff is not trained). */
  splitGiven?: boolean;
  /** FSAM's output H'. */
  enhanced: Float32Array;
  /** GSCM's output L' (its affinity, keys and key count are the GscmBuffers fields). */
  context: Float32Array;
  /** When given, FSAM records its attention here. */
  fsamTrace?: FsamTrace;
}

/** Buffers for one layer of [n, dim] features, allocated once for a multi-layer pass. */
function layerBuffers(n: number, dim: number): LayerBuffers {
  const size = n * dim;
  return {
    low: new Float32Array(size),
    high: new Float32Array(size),
    enhanced: new Float32Array(size),
    context: new Float32Array(size),
    affinity: new Float32Array(n * n),
    transposed: new Float32Array(size),
  };
}

function checkText(text: BranchText, dim: number, branches: boolean): void {
  const pairs: Array<[string, TextPair]> = [['full', text.full]];
  if (branches) pairs.push(['high', text.high], ['low', text.low]);
  for (const [name, pair] of pairs) {
    if (pair.normal.length !== dim || pair.abnormal.length !== dim) {
      throw new RangeError(`text.${name} must hold two [${dim}] vectors`);
    }
  }
}

/**
 * One layer's branch maps into `out`: the full features, FSAM on the high part and GSCM on the
 * low part, each scored against its own text pair. The one place a layer is scored: the
 * service (multiLayerBranchMaps) and training's forward pass both run it.
 */
export function scoreLayer(
  features: Float32Array,
  gridH: number,
  gridW: number,
  dim: number,
  text: BranchText,
  settings: BranchSettings,
  ws: LayerBuffers | undefined,
  out: BranchMaps,
): void {
  const n = gridH * gridW;
  const t = settings.temperature;
  patchProbabilities(features, n, dim, text.full.normal, text.full.abnormal, t, out.full);
  if (!settings.branches || ws === undefined || out.high === undefined || out.low === undefined) return;
  if (!ws.splitGiven) splitFrequency(features, gridH, gridW, dim, settings.cutoff, { low: ws.low, high: ws.high });
  fsam(ws.high, gridH, gridW, dim, settings.fsam, ws.enhanced, ws.fsamTrace);
  patchProbabilities(ws.enhanced, n, dim, text.high.normal, text.high.abnormal, t, out.high);
  gscm(ws.low, gridH, gridW, dim, settings.gscm, ws.context, ws);
  patchProbabilities(ws.context, n, dim, text.low.normal, text.low.abnormal, t, out.low);
}

function emptyMaps(n: number, branches: boolean): BranchMaps {
  const maps: BranchMaps = { full: new Float32Array(n) };
  if (branches) {
    maps.high = new Float32Array(n);
    maps.low = new Float32Array(n);
  }
  return maps;
}

/** The three maps of one layer's features ([gridH*gridW, dim]). */
export function layerBranchMaps(
  features: Float32Array,
  gridH: number,
  gridW: number,
  dim: number,
  text: BranchText,
  settings: BranchSettings = defaultBranchSettings,
): BranchMaps {
  const size = gridH * gridW * dim;
  if (features.length < size) throw new RangeError(`layerBranchMaps: need [${gridH * gridW}, ${dim}] features`);
  return gridBranchMaps({ data: features.subarray(0, size), layers: 1, gridH, gridW, dim }, text, settings);
}

export interface BranchMapsOptions {
  /** Each layer's own buffers (training keeps them for its backward pass); default one set reused. */
  layerBuffers?: (layer: number) => LayerBuffers;
}

/** gridBranchMaps with the grid's fields one by one. */
export function multiLayerBranchMaps(
  features: Float32Array,
  layers: number,
  gridH: number,
  gridW: number,
  dim: number,
  text: BranchText,
  settings: BranchSettings = defaultBranchSettings,
  options: BranchMapsOptions = {},
): BranchMaps {
  return gridBranchMaps({ data: features, layers, gridH, gridW, dim }, text, settings, options);
}

/** Each branch map averaged over the grid's layers ([layers, gridH*gridW, dim]). */
export function gridBranchMaps(
  grid: LayeredFeatureGrid,
  text: BranchText,
  settings: BranchSettings = defaultBranchSettings,
  options: BranchMapsOptions = {},
): BranchMaps {
  const { data: features, layers, gridH, gridW, dim } = grid;
  const n = gridH * gridW;
  const layerSize = n * dim;
  if (!Number.isInteger(layers) || layers < 1) throw new RangeError(`gridBranchMaps: layers must be >= 1, got ${layers}`);
  if (features.length !== layers * layerSize) {
    throw new RangeError(`gridBranchMaps: need [${layers}, ${n}, ${dim}] = ${layers * layerSize} values, got ${features.length}`);
  }
  checkText(text, dim, settings.branches);
  const shared = settings.branches && options.layerBuffers === undefined ? layerBuffers(n, dim) : undefined;
  const layerMaps = emptyMaps(n, settings.branches);
  const sums = { full: new Float64Array(n), high: new Float64Array(n), low: new Float64Array(n) };
  for (let l = 0; l < layers; l++) {
    const view = features.subarray(l * layerSize, (l + 1) * layerSize);
    const ws = settings.branches ? (options.layerBuffers?.(l) ?? shared) : undefined;
    scoreLayer(view, gridH, gridW, dim, text, settings, ws, layerMaps);
    for (let i = 0; i < n; i++) sums.full[i] += layerMaps.full[i];
    if (layerMaps.high !== undefined && layerMaps.low !== undefined) {
      for (let i = 0; i < n; i++) {
        sums.high[i] += layerMaps.high[i];
        sums.low[i] += layerMaps.low[i];
      }
    }
  }
  // Reuse the per-layer buffers for the averages.
  const result = layerMaps;
  for (let i = 0; i < n; i++) result.full[i] = sums.full[i] / layers;
  if (result.high !== undefined && result.low !== undefined) {
    for (let i = 0; i < n; i++) {
      result.high[i] = sums.high[i] / layers;
      result.low[i] = sums.low[i] / layers;
    }
  }
  return result;
}
