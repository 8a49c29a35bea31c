// The objective the trainer minimises: the mean over a batch of each image's loss (loss.ts) on
// the forward pass (forward.ts), with its gradient (backward.ts).
//
// Each image's gradient is computed into its own buffer and the buffers are added in batch
// order (meanOfSamples), so a batch split across worker threads (parallel-evaluator.ts) gives
// the same bits as one thread.
import type { BranchText } from '../methods/dense-frequency/branches.ts';
import type { ScoringSettings } from '../methods/dense-frequency/pipeline.ts';
import { backwardSample } from './backward.ts';
import { forwardSample } from './forward.ts';
import { addTerms, defaultLossSettings, imageLoss, zeroTerms, type LossSettings, type LossTerms } from './loss.ts';
import type { ParameterSpace } from './parameters.ts';
import type { TrainingSample } from './sample.ts';

/** One image's loss terms and, when asked for, its gradient dL/dθ. */
export interface SampleResult {
  terms: LossTerms;
  grad?: Float64Array;
}

/** Loss (and gradient) of one image; `text` and `settings` are space.branchText(θ), space.scoring(θ). */
export function sampleLoss(
  space: ParameterSpace,
  text: BranchText,
  settings: ScoringSettings,
  sample: TrainingSample,
  loss: LossSettings,
  withGrad: boolean,
): SampleResult {
  const fwd = forwardSample(sample, text, settings);
  const dMap = withGrad ? new Float64Array(fwd.upsampled.length) : undefined;
  const { terms, dPImage } = imageLoss(fwd.upsampled, sample.mask, fwd.pImage, sample.label, loss, dMap);
  if (!withGrad || !dMap) return { terms };
  const grad = new Float64Array(space.size);
  backwardSample(space, text, sample, fwd, settings, dMap, dPImage, grad);
  return { terms, grad };
}

/** The batch mean of per-image results, in their order; with `grad` ([size], overwritten) the mean gradient. */
export function meanOfSamples(results: readonly SampleResult[], grad?: Float64Array): LossTerms {
  if (results.length === 0) throw new RangeError('no samples');
  const mean = zeroTerms();
  if (grad) grad.fill(0);
  const scale = 1 / results.length;
  for (const r of results) {
    addTerms(mean, r.terms, scale);
    if (grad) {
      if (!r.grad) throw new Error('a sample result has no gradient');
      for (let i = 0; i < grad.length; i++) grad[i] += r.grad[i];
    }
  }
  if (grad) for (let i = 0; i < grad.length; i++) grad[i] *= scale;
  return mean;
}

/** Mean loss terms over `samples` at θ; with `grad` ([space.size], overwritten) also dL/dθ. */
export function batchLoss(
  space: ParameterSpace,
  theta: Float64Array,
  samples: readonly TrainingSample[],
  loss: LossSettings = defaultLossSettings,
  grad?: Float64Array,
): LossTerms {
  if (samples.length === 0) throw new RangeError('batchLoss: no samples');
  const text = space.branchText(theta);
  const settings = space.scoring(theta);
  return meanOfSamples(
    samples.map((s) => sampleLoss(space, text, settings, s, loss, grad !== undefined)),
    grad,
  );
}
