// The objective the trainer minimises: the mean over a batch of each image's loss (loss.ts) on
// the forward pass (forward.ts), with its gradient (backward.ts).
import { backwardSample } from './backward.ts';
import { forwardSample } from './forward.ts';
import { addTerms, defaultLossSettings, imageLoss, zeroTerms, type LossSettings, type LossTerms } from './loss.ts';
import type { ParameterSpace } from './parameters.ts';
import type { TrainingSample } from './sample.ts';

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
  const mean = zeroTerms();
  if (grad) grad.fill(0);
  const scale = 1 / samples.length;
  for (const sample of samples) {
    const fwd = forwardSample(sample, text, settings);
    const dMap = grad ? new Float64Array(fwd.upsampled.length) : undefined;
    const { terms, dPImage } = imageLoss(fwd.upsampled, sample.mask, fwd.pImage, sample.label, loss, dMap);
    addTerms(mean, terms, scale);
    if (grad && dMap) backwardSample(space, text, sample, fwd, settings, dMap, dPImage, grad);
  }
  if (grad) for (let i = 0; i < grad.length; i++) grad[i] *= scale;
  return mean;
}
