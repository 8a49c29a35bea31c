// Ground-truth masks (MVTec layout: white = defect) read as 0/1 at the size the metrics and
// the training loss work at.
import sharp from 'sharp';
import { resizeNearest } from './resample-nearest.ts';

/** A grey level above this is a defect pixel: JPEG-compressed masks keep their 0/255 meaning. */
export const MASK_THRESHOLD = 127;

/** Mask file → 0/1 at size × size (nearest, pixel centres); also its own size for checks. */
export async function readMaskInto(file: string, size: number, out: Uint8Array): Promise<{ width: number; height: number }> {
  const { data, info } = await sharp(file).removeAlpha().greyscale().raw().toBuffer({ resolveWithObject: true });
  const { width, height, channels } = info;
  const grey = resizeNearest(data, width, height, size, size, channels);
  for (let i = 0; i < size * size; i++) out[i] = grey[i * channels] > MASK_THRESHOLD ? 1 : 0;
  return { width, height };
}
