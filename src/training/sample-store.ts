// Training samples by index, read from the feature cache and prepared (sample.ts) on first use.
// Prepared samples stay in memory up to a byte budget; past it they are read again on each use
// (a few ms for a ViT-B image, small next to its forward and backward pass), so a large
// dataset with a large model trains in bounded memory.
import { readFeatures } from './feature-cache.ts';
import { prepareSample, type TrainingSample } from './sample.ts';

/** What the trainer iterates over. */
export interface SampleSet {
  readonly length: number;
  get(index: number): TrainingSample;
  /** Labels without loading the features (for stratified splits and summaries). */
  label(index: number): 0 | 1;
}

/** A set over samples already in memory (tests, small runs). */
export function sampleArray(samples: readonly TrainingSample[]): SampleSet {
  return { length: samples.length, get: (i) => samples[i], label: (i) => samples[i].label };
}

/** Default memory for kept samples: 1 GiB (the tiny model's whole MVTec fits in a few MB). */
export const DEFAULT_SAMPLE_BUDGET = 1 << 30;

export class SampleStore implements SampleSet {
  private readonly kept = new Map<number, TrainingSample>();
  private keptBytes = 0;

  constructor(
    private readonly files: readonly string[],
    private readonly labels: readonly (0 | 1)[],
    private readonly cutoff: number,
    private readonly budgetBytes = DEFAULT_SAMPLE_BUDGET,
  ) {
    if (files.length !== labels.length) throw new RangeError('SampleStore: one label per file');
  }

  get length(): number {
    return this.files.length;
  }

  label(index: number): 0 | 1 {
    return this.labels[index];
  }

  get(index: number): TrainingSample {
    const hit = this.kept.get(index);
    if (hit) return hit;
    const sample = prepareSample(readFeatures(this.files[index]), this.cutoff);
    const bytes = (sample.dense.length + sample.high.length + sample.low.length) * 4 + sample.mask.length;
    if (this.keptBytes + bytes <= this.budgetBytes) {
      this.kept.set(index, sample);
      this.keptBytes += bytes;
    }
    return sample;
  }
}

/** A view of some indices of another set (the training or validation part of a split). */
export function subset(set: SampleSet, indices: readonly number[]): SampleSet {
  return { length: indices.length, get: (i) => set.get(indices[i]), label: (i) => set.label(indices[i]) };
}
