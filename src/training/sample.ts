// One training image as the trainer sees it: the cached CLIP outputs plus the parts of the
// scoring that do not depend on trained parameters, computed once. The frequency split's
// cutoff is not trained, so each layer's high and low parts are fixed for the whole run.
import { splitFrequency } from '../methods/dense-frequency/frequency.ts';
import type { ImageEncoding } from '../methods/dense-frequency/pipeline.ts';

/** What the feature cache holds for one image (src/training/feature-cache.ts). */
export interface ImageFeatures extends ImageEncoding {
  /** Ground truth at maskSize × maskSize (the model input size): 1 = defect. */
  mask: Uint8Array;
  maskSize: number;
  /** 1 = defective image. */
  label: 0 | 1;
}

export interface TrainingSample extends ImageFeatures {
  /** splitFrequency of each layer of `dense`, same layout. */
  high: Float32Array;
  low: Float32Array;
}

export function prepareSample(features: ImageFeatures, cutoff: number): TrainingSample {
  const { dense, layers, gridH, gridW, dim } = features;
  const layerSize = gridH * gridW * dim;
  if (dense.length !== layers * layerSize) throw new RangeError(`prepareSample: dense has ${dense.length} values, expected ${layers * layerSize}`);
  if (features.mask.length !== features.maskSize * features.maskSize) throw new RangeError('prepareSample: mask is not maskSize × maskSize');
  const high = new Float32Array(dense.length);
  const low = new Float32Array(dense.length);
  for (let l = 0; l < layers; l++) {
    const range = [l * layerSize, (l + 1) * layerSize] as const;
    splitFrequency(dense.subarray(...range), gridH, gridW, dim, cutoff, { low: low.subarray(...range), high: high.subarray(...range) });
  }
  return { ...features, high, low };
}
