// What a stored category adds to a detection: its prompt text, default method, reference
// memory and calibrated thresholds. A category the store does not know is scored zero-shot, as
// before categories existed; the response says which case applied and where the threshold came from.
import type { DetectOptions, DetectResponse } from '../detection/types.ts';
import { DEFAULT_METHOD } from '../methods/registry.ts';
import type { CategoryRecord } from '../store/store.ts';
import type { CategoryService } from './service.ts';
import type { PromptChoice } from '../prompts/prompt-choice.ts';
import { CALIBRATION_PROMPTS, calibrationOutdated, type StoredCalibration } from './stored-calibration.ts';

export interface CategoryContext {
  record: CategoryRecord | null;
  thresholdSource: NonNullable<DetectResponse['thresholdSource']>;
  /** The verdict rests on the category's calibration. */
  calibrated: boolean;
  /** The category has a calibration this detection's method and prompts could use (whatever the request's threshold). */
  resourceCalibrated?: boolean;
  /** A zero-shot detection made while the store could not be reached (why): no record is written. */
  storeUnavailable?: Error;
}

/** Whether a category's calibration still describes what `method` computes today (any prompts). */
export async function calibrationFor(service: CategoryService, record: CategoryRecord, method: string): Promise<StoredCalibration | null> {
  const c = record.calibration as StoredCalibration | null;
  if (!c || c.method !== method) return null;
  return calibrationOutdated(c, await service.calibrationNow(record, method)) === null ? c : null;
}

/** Why the category's calibration is not used: in full (the response) and in a few words (the summary). */
export interface CalibrationNotUsed {
  reason: string;
  summary: string;
}

/**
 * The calibration a detection of `method` with `prompts` uses, or why the category's is not
 * used (none when it has no calibration at all).
 */
export async function calibrationUse(
  service: CategoryService,
  record: CategoryRecord,
  method: string,
  prompts: PromptChoice,
): Promise<{ calibration: StoredCalibration | null; notUsed?: CalibrationNotUsed }> {
  const c = record.calibration as StoredCalibration | null;
  if (!c) return { calibration: null };
  if (c.method !== method) {
    return { calibration: null, notUsed: { reason: `the category is calibrated for method ${c.method}, not ${method}`, summary: `the category's calibration is for ${c.method}` } };
  }
  const outdated = calibrationOutdated(c, await service.calibrationNow(record, method));
  if (outdated) return { calibration: null, notUsed: { reason: outdated, summary: "the category's calibration is out of date" } };
  const calibrated = c.prompts ?? CALIBRATION_PROMPTS;
  if (prompts.mode !== calibrated) {
    return {
      calibration: null,
      notUsed: { reason: `the category's calibration scored its normals with ${calibrated} prompts, this detection uses ${prompts.mode} ones`, summary: `the category's calibration is for ${calibrated} prompts` },
    };
  }
  return { calibration: c };
}

/** The detection's options completed from the stored category, if `options.category` names one. */
export async function withStoredCategory(service: CategoryService | undefined, options: DetectOptions): Promise<{ options: DetectOptions; context: CategoryContext }> {
  const given = options.thresholdGiven ? 'request' : 'default';
  const { record, storeUnavailable } = service ? await service.lookupForDetection(options.category) : { record: null, storeUnavailable: undefined };
  if (!service || !record) return { options: { ...options, thresholdSource: given }, context: { record: null, thresholdSource: given, calibrated: false, storeUnavailable } };
  const method = service.detector.registry.get(options.method ?? record.defaultMethod ?? DEFAULT_METHOD).name;
  const completed: DetectOptions = { ...options, category: record.name, method, memory: await service.memoryFor(record, method), thresholdSource: given };
  const { calibration, notUsed } = await calibrationUse(service, record, method, options.prompts);
  const resourceCalibrated = calibration !== null;
  if (options.thresholdGiven) return { options: completed, context: { record, thresholdSource: given, calibrated: false, resourceCalibrated } };
  if (!calibration) {
    return { options: { ...completed, ...(notUsed ? { calibrationNotUsed: notUsed } : {}) }, context: { record, thresholdSource: given, calibrated: false, resourceCalibrated } };
  }
  return {
    options: { ...completed, threshold: calibration.threshold, regionThreshold: calibration.pixelThreshold, thresholdSource: 'category calibration' },
    context: { record, thresholdSource: 'category calibration', calibrated: true, resourceCalibrated },
  };
}
