// Calibration of a category from normal images only (method.md §9): each normal image is
// scored exactly as a detection would be (its memory, its method), then the image threshold is
// an order statistic of the m scores with a stated guarantee (calibration.ts), and the pixel
// threshold the same rule on each normal map's maximum, so regions appear on at most the target
// share of normal images. Leave-one-out over the stored references scores each reference
// against a memory of the others.
import type { CategoryRecord, DetectionRecord } from '../store/store.ts';
import { BadRequestError, ConflictError } from '../errors.ts';
import type { DecodedImage } from '../imaging/decode.ts';
import { calibratePixelThreshold, calibrateThreshold } from './calibration.ts';
import { calibrationFor } from './detect-context.ts';
import { CALIBRATION_PROMPTS, type StoredCalibration } from './stored-calibration.ts';
import type { CategoryService, UploadedImage } from './service.ts';

export interface CalibrateOptions {
  /** Held-out normal images; absent: leave-one-out over the stored references. */
  images?: UploadedImage[];
  /** 1 − δ: the guarantee holds with this probability. */
  confidence: number;
}

/** Scores normal images as detections of the category would be, and stores the calibration. */
export async function calibrateCategory(service: CategoryService, record: CategoryRecord, options: CalibrateOptions): Promise<StoredCalibration> {
  const scoring = service.detector.registry.get(record.defaultMethod);
  // Scores that depend on the other images of a batch have no fixed distribution to calibrate.
  if (scoring.batchOnly) throw new BadRequestError(`method ${scoring.name} scores each image against the others of its batch, so its scores cannot be calibrated: give the category another default method`);
  const method = scoring.name;
  const scores: number[] = [];
  const maxima: number[] = [];
  const score = async (image: DecodedImage, memory: unknown) => {
    const { outcome } = await service.detector.scoreDecoded({ image, category: record.name, prompts: { mode: CALIBRATION_PROMPTS }, threshold: 1, method, memory });
    scores.push(outcome.score);
    maxima.push(outcome.map.reduce((m, v) => (v > m ? v : m), 0));
  };
  let source: StoredCalibration['source'];
  if (options.images) {
    source = 'images';
    const memory = await service.memoryFor(record, method);
    for (const image of await service.decodeAll(options.images)) await score(image, memory);
  } else {
    source = 'references';
    for (const { reference, image } of await service.referenceImages(record.id)) await score(image, await service.memoryFor(record, method, reference.id));
  }
  const alpha = record.targetFalseAlarmRate;
  const image = calibrateThreshold(scores, alpha, options.confidence);
  const calibration: StoredCalibration = {
    source,
    method,
    featureKey: service.featureKeys().get(method) ?? null,
    referenceCount: record.referenceCount,
    scoringKey: service.detector.scoringKey(method),
    prompts: CALIBRATION_PROMPTS,
    name: record.name,
    m: image.m,
    targetFalseAlarmRate: alpha,
    threshold: image.threshold,
    pixelThreshold: calibratePixelThreshold(maxima, alpha, options.confidence),
    rank: image.rank,
    confidence: image.confidence,
    guarantee: image.guarantee,
    scores: image.scores,
    calibratedAt: new Date().toISOString(),
  };
  await service.store.setCalibration(record.id, calibration);
  return calibration;
}

/**
 * A false alarm joins the calibration set: its recorded score is one more normal score, and the
 * threshold is recomputed from the m + 1 scores (the pixel threshold stays: the record keeps no map).
 */
export async function addToCalibration(service: CategoryService, categoryId: string, detection: DetectionRecord): Promise<StoredCalibration> {
  const record = await service.require(categoryId);
  const current = calibrationFor(service, record, detection.method);
  if (!current) throw new ConflictError(`category ${JSON.stringify(categoryId)} has no current calibration for method ${detection.method}: calibrate it first (POST /v1/categories/{id}/calibrate)`);
  // Only a detection scored as the calibration's normals were (it used this calibration: same
  // method, model, prompts and references) can join them.
  if (detection.thresholdSource !== 'category calibration') {
    throw new ConflictError(`this detection did not use the category's calibration (its threshold came from ${detection.thresholdSource === 'request' ? 'the request' : 'the default'}), so its score may not be comparable with the calibration's normal scores: add it to the references, or calibrate again`);
  }
  // A detection counts once: feedback sent again (a retry, a second click) changes nothing.
  const added = current.addedDetections ?? [];
  if (added.includes(detection.id)) return current;
  const image = calibrateThreshold([...current.scores, detection.score], current.targetFalseAlarmRate, current.confidence);
  const calibration: StoredCalibration = {
    ...current,
    m: image.m,
    threshold: image.threshold,
    rank: image.rank,
    confidence: image.confidence,
    guarantee: image.guarantee,
    scores: image.scores,
    addedDetections: [...added, detection.id],
    calibratedAt: new Date().toISOString(),
  };
  await service.store.setCalibration(categoryId, calibration);
  return calibration;
}
