// A category's calibration as stored (POST /v1/categories/{id}/calibrate), and whether it still
// describes what its method computes: scores depend on the model's features and on the references.
export interface StoredCalibration {
  source: 'images' | 'references';
  method: string;
  /** The method's feature key and the reference count it was made with: scores depend on both. */
  featureKey: string | null;
  referenceCount: number;
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

/**
 * Why `c` no longer holds for a category with `referenceCount` references under the method's
 * feature key today (detections then fall back to the default threshold), or null when it holds.
 */
export function calibrationOutdated(c: StoredCalibration, referenceCount: number, featureKey: string | null): string | null {
  if (c.featureKey !== featureKey) return 'made with another model\'s features; detections use the default threshold until it is calibrated again';
  if (c.referenceCount !== referenceCount) {
    return `made with ${c.referenceCount} reference${c.referenceCount === 1 ? '' : 's'}, the category now has ${referenceCount}; detections use the default threshold until it is calibrated again`;
  }
  return null;
}
