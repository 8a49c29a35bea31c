// Images as posted to an inference worker by any method.
import type { RgbImage } from '../imaging/decode.ts';

/**
 * The image as posted to a worker. Posting copies the whole ArrayBuffer behind a view, so a
 * Buffer that is a slice of a larger one is copied to its own first. The image keeps its
 * pixels (rendering needs them after scoring), so nothing is transferred.
 */
export function rgbForWorker(image: RgbImage): RgbImage {
  const { rgb, width, height } = image;
  const own = rgb.byteOffset === 0 && rgb.byteLength === rgb.buffer.byteLength;
  return { width, height, rgb: own ? rgb : new Uint8Array(rgb) };
}
