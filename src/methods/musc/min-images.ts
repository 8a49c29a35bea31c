// How many images MuSc needs, and its input errors.
//
// models/musc.py calls MSM(Z, device, topmin_min=0, topmin_max=0.3); models/modules/_MSM.py,
// compute_scores_fast(): `k_max = int(patch2image.shape[1]*k_max)` with shape[1] = N − 1 other
// images, then the mean of the k_max smallest values. Python's int() truncates, so
// k = trunc((N − 1)·0.3); k = 0 gives torch.mean of an empty tensor = NaN (the "N < 5 gives NaN"
// issue). k ≥ 1 ⇔ (N − 1)·0.3 ≥ 1 ⇔ N ≥ 5.

/** topmin_max in models/musc.py (MSM's interval average keeps the smallest 30 %). */
export const MUSC_TOP_MIN_RATIO = 0.3;

/** k = int((N − 1)·0.3), the same float expression as _MSM.py, so the rounding matches. */
export function topMinCount(images: number): number {
  return Math.trunc((images - 1) * MUSC_TOP_MIN_RATIO);
}

function smallestBatch(): number {
  let n = 2;
  while (topMinCount(n) < 1) n++;
  return n;
}

/** The smallest batch for which every patch gets at least one mutual score (5). */
export const MUSC_MIN_IMAGES: number = smallestBatch();

/** A MuSc input whose shape or values are wrong. */
export class MuscInputError extends Error {
  readonly code: string = 'musc_invalid_input';
  constructor(message: string) {
    super(message);
    this.name = 'MuscInputError';
  }
}

/** Fewer images than MuSc needs; `minimum` and `received` say how many. */
export class MuscTooFewImagesError extends MuscInputError {
  override readonly code = 'musc_too_few_images';
  constructor(
    readonly received: number,
    readonly minimum: number = MUSC_MIN_IMAGES,
  ) {
    super(`MuSc scores a batch of images against each other and needs at least ${minimum} images; got ${received}`);
    this.name = 'MuscTooFewImagesError';
  }
}

/** Throws MuscTooFewImagesError when `images` < MUSC_MIN_IMAGES. */
export function assertEnoughImages(images: number): void {
  if (!(images >= MUSC_MIN_IMAGES)) throw new MuscTooFewImagesError(images);
}
