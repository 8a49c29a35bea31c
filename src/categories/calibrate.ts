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
import { sha256Hex } from '../store/blobs.ts';
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
  let normalImages: string[];
  // Prompts CLIP would cut (a name too long for the templates) would calibrate scores no detection makes.
  service.detector.checkPromptLengths({ category: record.name, prompts: { mode: CALIBRATION_PROMPTS }, method, map: 'none', threshold: 1, branches: false });
  if (options.images) {
    source = 'images';
    normalImages = await checkHeldOut(service, record, options.images);
    const memory = await service.memoryFor(record, method);
    for (const image of await service.decodeAll(options.images)) await score(image, memory);
  } else {
    source = 'references';
    normalImages = [];
    for (const { reference, image } of await service.referenceImages(record.id)) {
      normalImages.push(reference.sha256);
      await score(image, await service.memoryFor(record, method, reference.id));
    }
  }
  const alpha = record.targetFalseAlarmRate;
  const image = calibrateThreshold(scores, alpha, options.confidence);
  const now = new Date().toISOString();
  const calibration: StoredCalibration = {
    source,
    method,
    featureKey: service.featureKeys().get(method) ?? null,
    referenceCount: record.referenceCount,
    referencesKey: await service.referencesKey(record),
    scoringKey: service.detector.scoringKey(method),
    prompts: CALIBRATION_PROMPTS,
    name: record.name,
    requestedConfidence: options.confidence,
    m: image.m,
    targetFalseAlarmRate: alpha,
    threshold: image.threshold,
    pixelThreshold: calibratePixelThreshold(maxima, alpha, options.confidence),
    rank: image.rank,
    confidence: image.confidence,
    guarantee: image.guarantee,
    scores: image.scores,
    calibratedAt: now,
    madeAt: now,
    normalImages,
  };
  await service.store.setCalibration(record.id, calibration);
  return calibration;
}

/**
 * Held-out normals must be images the calibration has not seen: a stored reference scores low
 * against a memory that holds it, and a copy sent twice counts twice. Either would overstate the
 * guarantee, so both are refused, naming the file. Returns the images' sha256, in order.
 */
async function checkHeldOut(service: CategoryService, record: CategoryRecord, images: readonly UploadedImage[]): Promise<string[]> {
  const references = new Set((await service.store.listReferences(record.id)).map((r) => r.sha256));
  const seen = new Map<string, number>();
  return images.map((u, i) => {
    const sha = sha256Hex(u.bytes);
    const what = `image ${i + 1}${u.filename ? ` (${u.filename})` : ''}`;
    if (references.has(sha)) throw new BadRequestError(`${what} is one of the category's references: held-out normals must be other images (or calibrate with {"source": "references"}, leave-one-out)`);
    const first = seen.get(sha);
    if (first !== undefined) throw new BadRequestError(`${what} is the same image as image ${first + 1}: each normal image counts once`);
    seen.set(sha, i);
    return sha;
  });
}

/**
 * A false alarm joins the calibration set: its recorded score is one more normal score, and the
 * threshold is recomputed from the m + 1 scores (the pixel threshold stays: the record keeps no map).
 */
export async function addToCalibration(service: CategoryService, categoryId: string, detection: DetectionRecord): Promise<{ calibration: StoredCalibration; added: boolean }> {
  const record = await service.require(categoryId);
  const current = await calibrationFor(service, record, detection.method);
  if (!current) throw new ConflictError(`category ${JSON.stringify(categoryId)} has no current calibration for method ${detection.method}: calibrate it first (POST /v1/categories/{id}/calibrate)`);
  // Only a detection scored as the calibration's normals were can join them: it used this
  // calibration (same method, model, prompts and references: any change since would have put it
  // out of date, and its detections on the default threshold), made after it was.
  if (detection.thresholdSource !== 'category calibration') {
    throw new ConflictError(`this detection did not use the category's calibration (its threshold came from ${detection.thresholdSource === 'request' ? 'the request' : 'the default'}), so its score may not be comparable with the calibration's normal scores: add it to the references, or calibrate again`);
  }
  const madeAt = current.madeAt ?? current.calibratedAt;
  if (detection.time.getTime() < Date.parse(madeAt)) {
    throw new ConflictError(`this detection was made before the category's current calibration (${madeAt}), under another one: its score may not be comparable with this calibration's normal scores`);
  }
  // A detection counts once, and so does an image detected twice (one request and a batch):
  // feedback sent again (a retry, a second click) changes nothing.
  const addedDetections = current.addedDetections ?? [];
  const addedImages = current.addedImages ?? [];
  const sha = detection.imageSha256;
  // The same image again (detected twice, or one of the calibration's own normals) counts once.
  if (addedDetections.includes(detection.id) || (sha !== null && (addedImages.includes(sha) || (current.normalImages ?? []).includes(sha)))) return { calibration: current, added: false };
  // A reference scores low against a memory that holds it: not a normal score like the others.
  if (sha !== null && (await service.store.listReferences(record.id)).some((r) => r.sha256 === sha)) {
    throw new ConflictError("this detection's image is one of the category's references: its score, made against a memory that holds it, is not comparable with the calibration's normal scores");
  }
  // The confidence asked for, not the one the last rank achieved (at least as high): that one
  // would ratchet up with every score added and freeze the rank. A calibration stored before the
  // request was kept has only the achieved one: used (and kept) as the one asked for, never less.
  const confidence = current.requestedConfidence ?? current.confidence;
  const image = calibrateThreshold([...current.scores, detection.score], current.targetFalseAlarmRate, confidence);
  const calibration: StoredCalibration = {
    ...current,
    m: image.m,
    threshold: image.threshold,
    rank: image.rank,
    confidence: image.confidence,
    guarantee: image.guarantee,
    scores: image.scores,
    requestedConfidence: confidence,
    addedDetections: [...addedDetections, detection.id],
    ...(sha !== null ? { addedImages: [...addedImages, sha] } : {}),
    madeAt,
    calibratedAt: new Date().toISOString(),
  };
  await service.store.setCalibration(categoryId, calibration);
  return { calibration, added: true };
}
