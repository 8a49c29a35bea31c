// Small JPEG previews of reference images for listings and the web page.
import sharp from 'sharp';
import type { DecodedImage } from './decode.ts';

export const THUMBNAIL_SIDE = 96;

/** A JPEG of at most THUMBNAIL_SIDE px a side, from the decoded pixels (orientation applied). */
export function thumbnailJpeg(image: DecodedImage, side = THUMBNAIL_SIDE): Promise<Buffer> {
  return sharp(image.rgb, { raw: { width: image.width, height: image.height, channels: 3 } })
    .resize(side, side, { fit: 'inside', withoutEnlargement: true })
    .jpeg({ quality: 75 })
    .toBuffer();
}
