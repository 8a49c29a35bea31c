// What a stored category adds to a detection: its prompt text, default method, reference
// memory and calibrated thresholds. A category the store does not know is scored zero-shot, as
// before categories existed; the response says which case applied and where the threshold came from.
import type { DetectOptions, DetectResponse } from '../detection/types.ts';
import { DEFAULT_METHOD } from '../methods/registry.ts';
import type { CategoryRecord } from '../store/store.ts';
import type { CategoryService } from './service.ts';
import { calibrationOutdated, type StoredCalibration } from './stored-calibration.ts';

export interface CategoryContext {
  record: CategoryRecord | null;
  thresholdSource: NonNullable<DetectResponse['thresholdSource']>;
  calibrated: boolean;
  /** A zero-shot detection made while the store could not be reached (why): no record is written. */
  storeUnavailable?: Error;
}

/** Whether a category's calibration still describes what `method` computes today. */
export function calibrationFor(service: CategoryService, record: CategoryRecord, method: string): StoredCalibration | null {
  const c = record.calibration as StoredCalibration | null;
  if (!c || c.method !== method) return null;
  return calibrationOutdated(c, record.referenceCount, service.featureKeys().get(method) ?? null) === null ? c : null;
}

/** The detection's options completed from the stored category, if `options.category` names one. */
export async function withStoredCategory(service: CategoryService | undefined, options: DetectOptions): Promise<{ options: DetectOptions; context: CategoryContext }> {
  const given = options.thresholdGiven ? 'request' : 'default';
  const { record, storeUnavailable } = service ? await service.lookupForDetection(options.category) : { record: null, storeUnavailable: undefined };
  if (!service || !record) return { options: { ...options, thresholdSource: given }, context: { record: null, thresholdSource: given, calibrated: false, storeUnavailable } };
  const method = service.detector.registry.get(options.method ?? record.defaultMethod ?? DEFAULT_METHOD).name;
  const completed: DetectOptions = { ...options, category: record.name, method, memory: await service.memoryFor(record, method), thresholdSource: given };
  const calibration = calibrationFor(service, record, method);
  if (options.thresholdGiven || !calibration) return { options: completed, context: { record, thresholdSource: given, calibrated: false } };
  return {
    options: { ...completed, threshold: calibration.threshold, regionThreshold: calibration.pixelThreshold, thresholdSource: 'category calibration' },
    context: { record, thresholdSource: 'category calibration', calibrated: true },
  };
}
