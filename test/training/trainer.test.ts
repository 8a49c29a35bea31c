// The training loop on small random cases (no model): it learns a planted defect direction,
// is deterministic for a seed, and early stopping returns the best epoch's parameters.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultScoringSettings } from '../../src/methods/dense-frequency/pipeline.ts';
import { defaultLossSettings } from '../../src/training/loss.ts';
import { seededRandom } from '../../src/util/rng.ts';
import { sampleArray, SampleStore, subset } from '../../src/training/sample-store.ts';
import { writeFeatures } from '../../src/training/feature-cache.ts';
import { ParallelEvaluator } from '../../src/training/parallel-evaluator.ts';
import { defaultTrainerSettings, setLoss, trainParameters } from '../../src/training/trainer.ts';
import { randomSample, randomSpace, unitVector } from './random-samples.ts';

const dim = 16;
const grid = 6;

function dataset(seed: number, count: number) {
  const random = seededRandom(seed);
  const defect = unitVector(dim, seededRandom(99)); // the same defect direction in every set
  return sampleArray(Array.from({ length: count }, (_, i) => randomSample(random, (i % 2) as 0 | 1, grid, dim, 2, 24, defaultScoringSettings.cutoff, defect)));
}

const space = randomSpace(dim, defaultScoringSettings, seededRandom(5));
const train = dataset(1, 32);
const validation = dataset(2, 12);

describe('trainer', () => {
  it('lowers the validation loss on a planted defect direction', async () => {
    const outcome = await trainParameters(space, train, validation, { ...defaultTrainerSettings, epochs: 10, batch: 4, lr: 0.05, patience: 0 });
    const h = outcome.history;
    expect(h.map((r) => r.epoch)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(outcome.steps).toBe(80); // 32 images in batches of 4, 10 epochs
    expect(h[outcome.bestEpoch].validation!.total).toBeLessThan(0.8 * h[0].validation!.total);
    // The returned θ is the best epoch's: its validation loss is the one recorded.
    expect(setLoss(space, outcome.theta, validation, defaultLossSettings, 4).total).toBeCloseTo(h[outcome.bestEpoch].validation!.total, 10);
  });

  it('is deterministic for a seed and changes with it', async () => {
    const settings = { ...defaultTrainerSettings, epochs: 2, batch: 3, lr: 0.05 };
    // No validation set: the last epoch's θ comes back, whatever the losses did.
    const none = sampleArray([]);
    const a = await trainParameters(space, train, none, { ...settings, seed: 7 });
    const b = await trainParameters(space, train, none, { ...settings, seed: 7 });
    const c = await trainParameters(space, train, none, { ...settings, seed: 8 });
    expect(a.bestEpoch).toBe(2);
    expect(b.theta).toEqual(a.theta);
    expect(b.history.map((r) => r.train)).toEqual(a.history.map((r) => r.train));
    expect(c.theta).not.toEqual(a.theta);
  });

  it('stops early and keeps the best epoch when validation stops improving', async () => {
    // A step size far too large: the validation loss jumps around and soon stops improving.
    const outcome = await trainParameters(space, train, validation, { ...defaultTrainerSettings, epochs: 30, batch: 4, lr: 3, patience: 2 });
    expect(outcome.stoppedEarly).toBe(true);
    const last = outcome.history[outcome.history.length - 1].epoch;
    expect(last).toBe(outcome.bestEpoch + 2);
    const best = Math.min(...outcome.history.map((r) => r.validation!.total));
    expect(outcome.history[outcome.bestEpoch].validation!.total).toBe(best);
    expect(setLoss(space, outcome.theta, validation, defaultLossSettings, 4).total).toBeCloseTo(best, 10);
  });

  it('with zero epochs returns the starting point', async () => {
    const outcome = await trainParameters(space, train, validation, { ...defaultTrainerSettings, epochs: 0 });
    expect(outcome.theta).toEqual(space.initial());
    expect(outcome.history).toHaveLength(1);
    expect(outcome.steps).toBe(0);
  });
});

describe('training on worker threads', () => {
  const dir = mkdtempSync(join(tmpdir(), 'parallel-train-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** The sets as the feature cache holds them, and the store the single-threaded run reads. */
  function onDisk() {
    const samples = [...Array.from({ length: train.length }, (_, i) => train.get(i)), ...Array.from({ length: validation.length }, (_, i) => validation.get(i))];
    const files = samples.map((s, i) => {
      const file = join(dir, `${i}.bin`);
      writeFeatures(file, 'key', `image-${i}.png`, s);
      return file;
    });
    const labels = samples.map((s) => s.label);
    const sets = { train: Array.from({ length: train.length }, (_, i) => i), validation: Array.from({ length: validation.length }, (_, i) => train.length + i) };
    const store = new SampleStore(files, labels, defaultScoringSettings.cutoff);
    return { files, labels, sets, store };
  }

  it('gives the same parameters and losses as one thread, bit for bit', async () => {
    const { files, labels, sets, store } = onDisk();
    const trainSet = subset(store, sets.train);
    const validationSet = subset(store, sets.validation);
    const settings = { ...defaultTrainerSettings, epochs: 3, batch: 5, lr: 0.05, patience: 0 };
    const single = await trainParameters(space, trainSet, validationSet, settings);
    const evaluator = ParallelEvaluator.start(2, { files, labels, cutoff: defaultScoringSettings.cutoff, budgetBytes: 1 << 26, base: space.base, loss: settings.loss, sets });
    try {
      expect(evaluator.threads).toBe(2);
      const parallel = await trainParameters(space, trainSet, validationSet, settings, undefined, evaluator);
      expect(Array.from(parallel.theta)).toEqual(Array.from(single.theta));
      expect(parallel.history.map((r) => [r.train, r.validation])).toEqual(single.history.map((r) => [r.train, r.validation]));
      expect(parallel.steps).toBe(single.steps);
      // And it learned something: the same check as the single-threaded test above.
      expect(parallel.history[parallel.bestEpoch].validation!.total).toBeLessThan(parallel.history[0].validation!.total);
    } finally {
      await evaluator.close();
    }
  });

  it('reports a worker failure as an error of the training call', async () => {
    const { labels, sets } = onDisk();
    const missing = labels.map((_, i) => join(dir, `missing-${i}.bin`));
    const evaluator = ParallelEvaluator.start(2, { files: missing, labels, cutoff: defaultScoringSettings.cutoff, budgetBytes: 1 << 20, base: space.base, loss: defaultLossSettings, sets });
    try {
      await expect(trainParameters(space, train, validation, { ...defaultTrainerSettings, epochs: 1 }, undefined, evaluator)).rejects.toThrow(/training worker: .*missing-/);
    } finally {
      await evaluator.close();
    }
  });
});
