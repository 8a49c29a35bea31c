// The few-shot and calibration protocols' draw (`npm run eval -- --shots k --calibrate m --seed s,…`):
// per category and seed, which normal images become the method's references, which are held
// out to calibrate a threshold, and which images remain the test set.
//
// - The pool is the category's `train/good` images when it has any, else its test set's good
//   images; in the second case every drawn image is taken OUT of the test set, so no image is
//   both a reference (or a calibration normal) and a scored test image.
// - The pool (in path order) is shuffled with a PRNG seeded by the seed and the category id:
//   the same seed draws the same images on every machine, another seed other images, and the
//   categories of one seed are drawn independently. The first k are the references, the next
//   m the calibration normals.
// - A test-set pool keeps at least one good image in the test set (else no false-alarm rate).
import { DatasetError, type Category, type DatasetImage } from '../dataset/mvtec.ts';
import { seededRandom, shuffled } from '../util/rng.ts';

export const DEFAULT_SEEDS = [1, 2, 3] as const;

export interface ProtocolOptions {
  /** k: references drawn per category (0 = zero-shot). */
  shots: number;
  /** m: held-out normal images to calibrate on (0 = no calibration). */
  calibrate: number;
}

export type ReferenceSource = 'train/good' | 'test/good';

export interface CategorySplit {
  seed: number;
  /** The category as the evaluation scores it: the drawn images are no longer in it. */
  test: Category;
  references: DatasetImage[];
  calibration: DatasetImage[];
  source: ReferenceSource;
  /** Calibration normals asked for (m); `calibration.length` is what the pool allowed. */
  calibrateRequested: number;
}

/** FNV-1a of the text: a 32-bit seed that differs by category. */
function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** Draws the references and calibration normals of one category for one seed. Throws DatasetError when k does not fit. */
export function splitCategory(category: Category, options: ProtocolOptions, seed: number): CategorySplit {
  const fromTrain = category.trainGood.length > 0;
  const source: ReferenceSource = fromTrain ? 'train/good' : 'test/good';
  const pool = fromTrain ? category.trainGood : category.images.filter((i) => i.label === 0);
  // Drawing from the test set leaves at least one good image to measure false alarms on.
  const available = pool.length - (fromTrain ? 0 : 1);
  if (options.shots > available) {
    throw new DatasetError(
      `category ${category.id} has ${pool.length} good image(s) in ${source}: --shots ${options.shots} needs at least ${options.shots}` +
        (fromTrain ? '' : ' (+1 left in the test set)'),
    );
  }
  const drawn = shuffled(pool, seededRandom(hash32(`${seed}\u0000${category.id}`)));
  const references = drawn.slice(0, options.shots);
  const calibration = drawn.slice(options.shots, options.shots + Math.min(options.calibrate, available - options.shots));
  const notes = [...category.notes];
  if (options.shots) notes.push(`few-shot: ${references.length} reference(s) drawn from ${source} with seed ${seed}${fromTrain ? '' : ', excluded from the test set'}`);
  if (options.calibrate) {
    notes.push(`calibration: ${calibration.length} normal image(s) held out from ${source} with seed ${seed}${fromTrain ? '' : ', excluded from the test set'}`);
    if (calibration.length < options.calibrate) notes.push(`calibration: only ${calibration.length} of the ${options.calibrate} requested normal images were available`);
  }
  const out = new Set(fromTrain ? [] : [...references, ...calibration]);
  const test: Category = { ...category, images: category.images.filter((i) => !out.has(i)), notes };
  return { seed, test, references, calibration, source, calibrateRequested: options.calibrate };
}

/** Every category's split for every seed (seed-major); the first category that does not fit throws. */
export function splitAll(categories: readonly Category[], options: ProtocolOptions, seeds: readonly number[]): CategorySplit[][] {
  return seeds.map((seed) => categories.map((c) => splitCategory(c, options, seed)));
}

/** What the report keeps of a category's draw and calibration (one seed). */
export interface CategoryProtocol {
  seed: number;
  source: ReferenceSource;
  /** Names of the reference images (path under the category folder), in draw order. */
  references: string[];
  /** References the method used (WinCLIP takes at most 8; a method without references none). */
  referencesUsed: number;
  calibration?: CategoryCalibration;
}

// The calibration protocol's outcome per category (computed by calibrate.ts).
export interface Rate {
  count: number;
  of: number;
  /** count / of; null when there is nothing to count. */
  rate: number | null;
}

export type CategoryCalibration =
  | {
      ok: true;
      /** Normal images calibrated on. */
      m: number;
      targetFalseAlarmRate: number;
      /** Requested confidence (1 − δ) and the one the chosen order statistic achieves (≥). */
      confidence: number;
      achievedConfidence: number;
      /** anomalous ⇔ score ≥ threshold, as the service decides. */
      threshold: number;
      rank: number;
      guarantee: string;
      /** Good test images at or above the threshold. */
      falseAlarms: Rate;
      /** Defective test images below it. */
      misses: Rate;
    }
  | { ok: false; m: number; targetFalseAlarmRate: number; confidence: number; message: string };

