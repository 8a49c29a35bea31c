// One training run from data to a prompt file: templated start → cached features → split →
// Adam → the learned prompts file and its loss curve. scripts/train.ts is the command line
// around it; tests call it directly on a synthetic dataset.
import { mkdirSync } from 'node:fs';
import { writeFileAtomicSync } from '../util/atomic-write.ts';
import { dirname } from 'node:path';
import type { ClipRuntime } from '../clip/runtime/runtime.ts';
import { denseFrequencyClassEmbeddings } from '../methods/dense-frequency/text.ts';
import { writePlot } from '../eval/plots.ts';
import type { Progress } from '../eval/progress.ts';
import { DEFAULT_CATEGORY_FILLER } from '../prompts/ensemble.ts';
import { checkpointIdentity, learnedScoringOf, serializeLearnedPrompts } from '../methods/dense-frequency/learned-prompts.ts';
import { defaultScoringSettings, type ScoringSettings } from '../methods/dense-frequency/pipeline.ts';
import { cacheFeatures } from './feature-cache.ts';
import { validationSplit, type TrainingData } from './dataset.ts';
import type { LossTerms } from './loss.ts';
import { ParameterSpace } from './parameters.ts';
import { DEFAULT_SAMPLE_BUDGET, SampleStore, subset } from './sample-store.ts';
import { trainParameters, type TrainerSettings, type TrainOutcome } from './trainer.ts';
import { ParallelEvaluator } from './parallel-evaluator.ts';

export interface TrainRunOptions {
  runtime: ClipRuntime;
  data: TrainingData;
  /** Feature cache folder (feature-cache.ts). */
  featureDir: string;
  /** The prompt file to write (…/<name>.json); the loss curve goes beside it as <name>.loss.png. */
  out: string;
  trainer: TrainerSettings;
  validationFraction: number;
  /** Starting scoring settings; the trained values start from these. Default: the service's defaults. */
  scoring?: ScoringSettings;
  maxPixels?: number;
  sampleBudgetBytes?: number;
  /** Worker threads for the forward and backward passes; 1 runs them on this thread. Same result either way. */
  threads?: number;
  /** A progress display for `total` items (feature extraction, then training). */
  progress?: (total: number, what: string) => Progress;
  log?: (message: string) => void;
  /** The command line, recorded in the file. */
  command?: string;
}

export interface TrainRunResult {
  file: string;
  plot: string;
  outcome: TrainOutcome;
  /** Losses at the returned parameters (the best epoch). */
  losses: { epoch: number; train: LossTerms; validation: LossTerms | null };
  counts: { train: number; validation: number; featuresComputed: number; featuresReused: number };
  seconds: { features: number; training: number };
}

const round = (v: number) => Math.round(v * 1e6) / 1e6;
const roundTerms = (t: LossTerms) => ({ total: round(t.total), focal: round(t.focal), dice: round(t.dice), image: round(t.image) });

/** The loss-curve file written beside a prompt file. */
export function lossCurveFile(out: string): string {
  return out.replace(/\.json$/i, '') + '.loss.png';
}

export async function runTraining(options: TrainRunOptions): Promise<TrainRunResult> {
  const { runtime, data, trainer } = options;
  const log = options.log ?? (() => {});
  const scoring = { ...(options.scoring ?? defaultScoringSettings), branches: true };
  const checkpoint = checkpointIdentity(runtime);

  // The starting point is exactly what the service computes for templated prompts of "object".
  const start = await denseFrequencyClassEmbeddings((texts) => runtime.encodeTexts(texts), runtime.dim, DEFAULT_CATEGORY_FILLER, { mode: 'templated' });

  let t = performance.now();
  const featureProgress = options.progress?.(data.images.length, 'features');
  const cached = await cacheFeatures(runtime, data.images, { dir: options.featureDir, maxPixels: options.maxPixels, progress: featureProgress });
  featureProgress?.done();
  const featureSeconds = (performance.now() - t) / 1000;
  log(`features: ${cached.computed} computed, ${cached.reused} from the cache (${featureSeconds.toFixed(1)} s)`);

  const split = validationSplit(data.images, options.validationFraction, trainer.seed);
  const all = new SampleStore(cached.files, data.images.map((i) => i.label), scoring.cutoff, options.sampleBudgetBytes ?? DEFAULT_SAMPLE_BUDGET);
  const trainSet = subset(all, split.train);
  const validationSet = subset(all, split.validation);
  const base = { dim: runtime.dim, text: { full: start, high: start, low: start, image: start }, scoring };
  const space = new ParameterSpace(base);
  const threads = Math.max(1, Math.min(options.threads ?? 1, split.train.length));
  const evaluator =
    threads > 1
      ? ParallelEvaluator.start(threads, {
          files: cached.files,
          labels: data.images.map((i) => i.label),
          cutoff: scoring.cutoff,
          budgetBytes: options.sampleBudgetBytes ?? DEFAULT_SAMPLE_BUDGET,
          base,
          loss: trainer.loss,
          sets: { train: split.train, validation: split.validation },
        })
      : undefined;

  t = performance.now();
  const perEpoch = trainSet.length + validationSet.length;
  const trainProgress = options.progress?.((trainer.epochs + 1) * perEpoch, 'training');
  let outcome: TrainOutcome;
  try {
    outcome = await trainParameters(space, trainSet, validationSet, trainer, trainProgress, evaluator);
  } finally {
    await evaluator?.close();
  }
  trainProgress?.done();
  const trainSeconds = (performance.now() - t) / 1000;
  const best = outcome.history[outcome.bestEpoch];
  const last = outcome.history[outcome.history.length - 1];

  const learned = space.scoring(outcome.theta);
  const count = (indices: number[], label: 0 | 1) => indices.filter((i) => data.images[i].label === label).length;
  const training = {
    createdAt: new Date().toISOString(),
    command: options.command,
    generatedRandomModel: Boolean(runtime.generated),
    start: `templated ensemble of "${DEFAULT_CATEGORY_FILLER}" (WinCLIP states × templates) for every branch and the image`,
    data: {
      roots: [...new Set(data.categories.map((c) => c.root))],
      categories: data.categories.map((c) => ({ id: c.id, name: c.name, good: c.good, defective: c.defective })),
      images: data.images.length,
      train: { images: split.train.length, good: count(split.train, 0), defective: count(split.train, 1) },
      validation: { images: split.validation.length, good: count(split.validation, 0), defective: count(split.validation, 1) },
      notes: data.notes,
    },
    seed: trainer.seed,
    settings: {
      epochs: trainer.epochs,
      batch: trainer.batch,
      lr: trainer.lr,
      optimizer: 'adam (β1 0.9, β2 0.999); text coordinates at lr/√D, vectors re-normalised after each step',
      patience: trainer.patience,
      minDelta: trainer.minDelta,
      validationFraction: options.validationFraction,
      loss: { ...trainer.loss, resolution: runtime.graphOptions.imageSize, map: 'fused map upsampled bilinearly to the input size' },
      fixedScoring: { cutoff: scoring.cutoff, fsamK: scoring.fsam.k, fsamIncludeSelf: scoring.fsam.includeSelf, gscmKeyPool: scoring.gscm.keyPool },
    },
    epochs: last.epoch,
    bestEpoch: outcome.bestEpoch,
    stoppedEarly: outcome.stoppedEarly,
    steps: outcome.steps,
    losses: { epoch: best.epoch, train: roundTerms(best.train), validation: best.validation ? roundTerms(best.validation) : null },
    history: outcome.history.map((r) => ({ epoch: r.epoch, train: round(r.train.total), validation: r.validation ? round(r.validation.total) : null, seconds: round(r.seconds) })),
    seconds: { features: round(featureSeconds), training: round(trainSeconds) },
  };

  mkdirSync(dirname(options.out), { recursive: true });
  // Whole or not at all (write, then rename): the service loads this folder, and a run cut short must not leave half a file.
  writeFileAtomicSync(options.out, serializeLearnedPrompts({ checkpoint, text: space.branchText(outcome.theta), scoring: learnedScoringOf(learned), training }));
  const plot = lossCurveFile(options.out);
  await writeLossCurve(plot, outcome, runtime.generated !== undefined);
  return {
    file: options.out,
    plot,
    outcome,
    losses: { epoch: best.epoch, train: best.train, validation: best.validation },
    counts: { train: split.train.length, validation: split.validation.length, featuresComputed: cached.computed, featuresReused: cached.reused },
    seconds: { features: featureSeconds, training: trainSeconds },
  };
}

/** Training and validation loss per epoch as a PNG (the evaluation's plot code). */
export async function writeLossCurve(file: string, outcome: TrainOutcome, generated: boolean): Promise<void> {
  const h = outcome.history;
  const epochs = h.map((r) => r.epoch);
  const series = [{ name: 'train', curve: { x: epochs, y: h.map((r) => r.train.total) } }];
  if (h[0].validation) series.push({ name: 'validation', curve: { x: epochs, y: h.map((r) => r.validation!.total) } });
  const top = Math.max(...series.flatMap((s) => s.curve.y));
  series.push({ name: `best: epoch ${outcome.bestEpoch}`, curve: { x: [outcome.bestEpoch, outcome.bestEpoch], y: [0, top * 1.1] } });
  await writePlot(file, {
    title: `Training loss${generated ? ' (random-weight model)' : ''}`,
    xLabel: 'epoch',
    yLabel: 'loss (focal + dice + image BCE)',
    xMax: Math.max(1, epochs[epochs.length - 1]),
    yMax: top * 1.1,
    series,
  });
}
