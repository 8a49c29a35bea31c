// The training loop: Adam on mini-batches of the training set, the validation loss after every
// epoch, early stopping, and the best parameters (by validation loss) kept.
// - Epoch 0 is the starting point (templated prompts): both losses are measured before any step,
//   so the curve shows where training began and "best" can be the start itself.
// - An epoch's training loss is the mean of its batch losses, each measured before that batch's
//   step (the usual running figure); the validation loss is a full pass after the epoch.
// - Early stopping: after `patience` epochs without the validation loss improving by more than
//   `minDelta`, training stops and the best epoch's parameters are returned. Without validation
//   images, every epoch runs and the last parameters are returned.
// Deterministic: the batch order comes from the seeded PRNG, and per-image results are combined in
// batch order whether they come from this thread or from worker threads (parallel-evaluator.ts).
import type { Progress } from '../util/progress.ts';
import { Adam } from './adam.ts';
import { addTerms, defaultLossSettings, zeroTerms, type LossSettings, type LossTerms } from './loss.ts';
import { batchLoss } from './objective.ts';
import type { ParameterSpace } from './parameters.ts';
import { seededRandom, shuffled } from '../util/rng.ts';
import type { SampleSet } from './sample-store.ts';
import type { TrainingSample } from './sample.ts';

export interface TrainerSettings {
  /** Epochs at most; 0 returns the starting point (templated prompts). */
  epochs: number;
  /** Images per Adam step. */
  batch: number;
  /** Step size of each scalar parameter and, roughly, of each text vector (see adam.ts). */
  lr: number;
  /** Epochs without validation improvement before stopping; 0 never stops early. */
  patience: number;
  /** Smallest decrease of the validation loss that counts as an improvement. */
  minDelta: number;
  seed: number;
  loss: LossSettings;
}

export const defaultTrainerSettings: TrainerSettings = {
  epochs: 20,
  batch: 8,
  lr: 0.01,
  patience: 4,
  minDelta: 1e-4,
  seed: 0,
  loss: defaultLossSettings,
};

/** Where batch losses come from: this thread (localEvaluator) or worker threads (parallel-evaluator.ts). */
export interface LossEvaluator {
  /** Mean terms over the images at `positions` of the train or validation set at θ; with `grad` (overwritten) also dL/dθ. */
  loss(theta: Float64Array, set: 'train' | 'validation', positions: readonly number[], grad?: Float64Array): Promise<LossTerms>;
}

export function localEvaluator(space: ParameterSpace, sets: { train: SampleSet; validation: SampleSet }, loss: LossSettings): LossEvaluator {
  return {
    loss: async (theta, set, positions, grad) => batchLoss(space, theta, positions.map((p) => sets[set].get(p)), loss, grad),
  };
}

export interface EpochRecord {
  epoch: number;
  train: LossTerms;
  validation: LossTerms | null;
  seconds: number;
}

export interface TrainOutcome {
  /** The parameters returned: the best epoch's (or the last, without validation). */
  theta: Float64Array;
  history: EpochRecord[];
  bestEpoch: number;
  stoppedEarly: boolean;
  steps: number;
}

/** Mean loss over a whole set, in chunks of `chunk` images. */
export function setLoss(space: ParameterSpace, theta: Float64Array, set: SampleSet, loss: LossSettings, chunk: number, onImages?: (n: number) => void): LossTerms {
  const mean = zeroTerms();
  for (let start = 0; start < set.length; start += chunk) {
    const samples: TrainingSample[] = [];
    for (let i = start; i < Math.min(set.length, start + chunk); i++) samples.push(set.get(i));
    addTerms(mean, batchLoss(space, theta, samples, loss), samples.length / set.length);
    onImages?.(samples.length);
  }
  return mean;
}

/** setLoss through an evaluator: the same chunks, combined the same way. */
async function evaluatedSetLoss(
  evaluator: LossEvaluator,
  theta: Float64Array,
  set: 'train' | 'validation',
  length: number,
  chunk: number,
  onImages?: (n: number) => void,
): Promise<LossTerms> {
  const mean = zeroTerms();
  for (let start = 0; start < length; start += chunk) {
    const positions: number[] = [];
    for (let i = start; i < Math.min(length, start + chunk); i++) positions.push(i);
    addTerms(mean, await evaluator.loss(theta, set, positions), positions.length / length);
    onImages?.(positions.length);
  }
  return mean;
}

/** Learning-rate scale per parameter: text coordinates 1/√D (so a vector moves ~lr per step), scalars 1. */
function learningRateScale(space: ParameterSpace): Float64Array {
  const scale = new Float64Array(space.size).fill(1);
  scale.fill(1 / Math.sqrt(space.dim), 0, space.logTemperature);
  return scale;
}

export async function trainParameters(
  space: ParameterSpace,
  trainSet: SampleSet,
  validationSet: SampleSet,
  settings: TrainerSettings = defaultTrainerSettings,
  progress?: Progress,
  evaluator: LossEvaluator = localEvaluator(space, { train: trainSet, validation: validationSet }, settings.loss),
): Promise<TrainOutcome> {
  const { epochs, batch, lr, patience, minDelta, loss } = settings;
  if (!Number.isInteger(epochs) || epochs < 0) throw new RangeError(`epochs must be a whole number >= 0, got ${epochs}`);
  if (!Number.isInteger(batch) || batch < 1) throw new RangeError(`batch must be a whole number >= 1, got ${batch}`);
  if (trainSet.length === 0) throw new RangeError('no training images');
  const random = seededRandom(settings.seed);
  const adam = new Adam(space.size, { lr }, learningRateScale(space));
  const theta = space.initial();
  const grad = new Float64Array(space.size);
  const tick = (n: number) => progress?.tick(n);
  const hasValidation = validationSet.length > 0;

  const history: EpochRecord[] = [];
  let t0 = performance.now();
  const start: EpochRecord = {
    epoch: 0,
    train: await evaluatedSetLoss(evaluator, theta, 'train', trainSet.length, batch, tick),
    validation: hasValidation ? await evaluatedSetLoss(evaluator, theta, 'validation', validationSet.length, batch, tick) : null,
    seconds: 0,
  };
  start.seconds = (performance.now() - t0) / 1000;
  history.push(start);
  const show = (r: EpochRecord) =>
    progress?.status(`epoch ${r.epoch}/${epochs}  train ${r.train.total.toFixed(4)}${r.validation ? `  val ${r.validation.total.toFixed(4)}` : ''}`);
  show(start);

  let best = { epoch: 0, loss: start.validation?.total ?? Infinity, theta: theta.slice() };
  let stoppedEarly = false;
  const order = Array.from({ length: trainSet.length }, (_, i) => i);
  // On one thread the evaluator computes in place: without a turn of the event loop now and then
  // a Ctrl-C (and the progress bar) waited for the whole run to end.
  let turned = performance.now();
  for (let epoch = 1; epoch <= epochs; epoch++) {
    t0 = performance.now();
    const epochTrain = zeroTerms();
    const indices = shuffled(order, random);
    for (let s = 0; s < indices.length; s += batch) {
      const positions = indices.slice(s, s + batch);
      const terms = await evaluator.loss(theta, 'train', positions, grad);
      addTerms(epochTrain, terms, positions.length / indices.length);
      adam.step(theta, grad);
      space.normalizeText(theta);
      tick(positions.length);
      if (performance.now() - turned > 50) {
        await new Promise((resolve) => setImmediate(resolve));
        turned = performance.now();
      }
    }
    const record: EpochRecord = {
      epoch,
      train: epochTrain,
      validation: hasValidation ? await evaluatedSetLoss(evaluator, theta, 'validation', validationSet.length, batch, tick) : null,
      seconds: 0,
    };
    record.seconds = (performance.now() - t0) / 1000;
    history.push(record);
    show(record);
    if (!record.validation) {
      best = { epoch, loss: Infinity, theta: theta.slice() };
    } else if (record.validation.total < best.loss - minDelta) {
      best = { epoch, loss: record.validation.total, theta: theta.slice() };
    } else if (patience > 0 && epoch - best.epoch >= patience) {
      stoppedEarly = epoch < epochs;
      break;
    }
  }
  return { theta: best.theta, history, bestEpoch: best.epoch, stoppedEarly, steps: adam.steps };
}
