// The calibration protocol of the evaluation (`--calibrate m`): the m held-out normal images'
// scores give a threshold by the service's own rule (calibrateThreshold: an order statistic with
// a distribution-free guarantee, src/categories/calibration.ts), and the threshold is applied to
// the images that remain, to report the false-alarm rate it realises on their normal images and
// the share of defective images it misses. Pure: the scoring is done by the caller.
import { calibrateThreshold, TooFewNormalsError } from '../categories/calibration.ts';
import type { ScoredRecord } from './evaluate.ts';

/** α and 1 − δ when the command line does not give them: the guarantee needs m ≥ 22 at these. */
export const DEFAULT_TARGET_FAR = 0.1;
export const DEFAULT_CONFIDENCE = 0.9;

export type { CategoryCalibration, Rate } from './protocol.ts';
import type { CategoryCalibration, Rate } from './protocol.ts';

function rate(count: number, of: number): Rate {
  return { count, of, rate: of ? count / of : null };
}

/** Threshold from the calibration scores, applied to the test records. TooFewNormalsError becomes `ok: false` with its message. */
export function calibrateOnRecords(calibrationScores: readonly number[], test: readonly ScoredRecord[], targetFalseAlarmRate: number, confidence: number): CategoryCalibration {
  let calibration;
  try {
    calibration = calibrateThreshold(calibrationScores, targetFalseAlarmRate, confidence);
  } catch (err) {
    if (err instanceof TooFewNormalsError) return { ok: false, m: calibrationScores.length, targetFalseAlarmRate, confidence, message: `${err.message} (in the evaluation: --calibrate M, --target-far, --confidence)` };
    throw err;
  }
  const good = test.filter((r) => r.label === 0);
  const bad = test.filter((r) => r.label === 1);
  return {
    ok: true,
    m: calibration.m,
    targetFalseAlarmRate,
    confidence,
    achievedConfidence: calibration.confidence,
    threshold: calibration.threshold,
    rank: calibration.rank,
    guarantee: calibration.guarantee,
    falseAlarms: rate(good.filter((r) => r.score >= calibration.threshold).length, good.length),
    misses: rate(bad.filter((r) => r.score < calibration.threshold).length, bad.length),
  };
}
