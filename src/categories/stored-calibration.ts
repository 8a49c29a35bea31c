// A category's calibration as stored (POST /v1/categories/{id}/calibrate), and whether it still
// describes what its method computes: scores depend on the model's features and on the references.
export interface StoredCalibration {
  source: 'images' | 'references';
  method: string;
  /** The method's feature key and the reference count it was made with: scores depend on both. */
  featureKey: string | null;
  referenceCount: number;
  /** The detector's scoring key (model, precision, few-shot settings: ClipDetector.scoringKey); absent in older calibrations. */
  scoringKey?: string;
  /** The prompts the normals were scored with (`templated`): detections with other prompts do not use it. */
  prompts?: string;
  /** The category's prompt name the normals were scored with. */
  name?: string;
  /** Which references the normals were scored against (ReferenceKeys: the set of reference ids), not only how many. */
  referencesKey?: string;
  /** The confidence asked for (`confidence` is what the rank achieved, at least this): feedback recomputes with this one. */
  requestedConfidence?: number;
  /** When the calibration was made (`calibratedAt` moves when feedback adds a score): detections before it were scored otherwise. */
  madeAt?: string;
  /** Images (sha256) whose scores joined through feedback: the same image detected twice counts once. */
  addedImages?: string[];
  /** The normal images (sha256) scored at calibration (held-out images, or the references left out in turn): feedback cannot count them again. */
  normalImages?: string[];
  m: number;
  targetFalseAlarmRate: number;
  threshold: number;
  pixelThreshold: number;
  rank: number;
  confidence: number;
  guarantee: string;
  scores: number[];
  /** Detections whose score joined `scores` through feedback (`addTo: calibration`), each once. */
  addedDetections?: string[];
  calibratedAt: string;
}

/** What a calibration is checked against: the category and the detector as they are now. */
export interface CalibrationNow {
  referenceCount: number;
  /** The set of the category's reference ids, as a key. */
  referencesKey: string;
  /** The method's feature key (methods that store features), else null. */
  featureKey: string | null;
  scoringKey: string;
  name: string;
  targetFalseAlarmRate: number;
}

/** The prompts a calibration scores its normals with; a detection uses it only with the same. */
export const CALIBRATION_PROMPTS = 'templated';

/**
 * Why `c` no longer holds for the category and detector as they are now (`now`), or null when
 * it holds. Detections then fall back to the default threshold until it is calibrated again.
 */
export function calibrationOutdated(c: StoredCalibration, now: CalibrationNow): string | null {
  const why = (reason: string) => `${reason}; detections use the default threshold until it is calibrated again`;
  if (c.featureKey !== now.featureKey || (c.scoringKey !== undefined && c.scoringKey !== now.scoringKey)) {
    return why('made with another model, precision or few-shot setting than the loaded one');
  }
  if (c.referenceCount !== now.referenceCount) return why(`made with ${c.referenceCount} reference${c.referenceCount === 1 ? '' : 's'}, the category now has ${now.referenceCount}`);
  if (c.referencesKey !== undefined && c.referencesKey !== now.referencesKey) return why(`made with other references than the category's now (as many, ${now.referenceCount}, but some were removed and others added)`);
  if (c.name !== undefined && c.name !== now.name) return why(`made for the prompt name ${JSON.stringify(c.name)}, the category's is now ${JSON.stringify(now.name)}`);
  if (c.targetFalseAlarmRate !== now.targetFalseAlarmRate) {
    return why(`made for a target false-alarm rate of ${c.targetFalseAlarmRate}, the category now asks ${now.targetFalseAlarmRate}`);
  }
  return null;
}
