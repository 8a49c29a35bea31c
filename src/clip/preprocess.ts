// Image bytes → model input, with sharp: decode any common format to 8-bit sRGB (EXIF
// orientation applied), then resize the whole image to S×S and normalise.
import sharp, { type Metadata } from 'sharp';

export interface DecodedImage {
  width: number;
  height: number;
  /** 8-bit sRGB, 3 channels, row-major, orientation applied. */
  rgb: Buffer;
  format: string;
}

export interface PreprocessConfig {
  size: number;
  mean: [number, number, number];
  std: [number, number, number];
}

/** Bytes that are not a decodable image (HTTP 422). */
export class ImageDecodeError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ImageDecodeError';
  }
}

/** An image over the pixel limit: a decompression bomb or simply too large (HTTP 413). */
export class ImageTooLargeError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ImageTooLargeError';
  }
}

export const DEFAULT_MAX_PIXELS = 100_000_000;

const CLIP_MEAN: [number, number, number] = [0.48145466, 0.4578275, 0.40821073];
const CLIP_STD: [number, number, number] = [0.26862954, 0.26130258, 0.27577711];

/** Recognises the formats sharp can decode here by their magic bytes. */
export function sniffImageType(bytes: Buffer): string | null {
  const b = bytes;
  const at = (offset: number, text: string) => b.length >= offset + text.length && b.toString('latin1', offset, offset + text.length) === text;
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (at(0, '\x89PNG\r\n\x1a\n')) return 'png';
  if (at(0, 'RIFF') && at(8, 'WEBP')) return 'webp';
  if (at(0, 'GIF87a') || at(0, 'GIF89a')) return 'gif';
  if (at(0, 'II*\x00') || at(0, 'MM\x00*')) return 'tiff';
  if (at(4, 'ftyp')) {
    const brand = b.toString('latin1', 8, 12);
    if (brand === 'avif' || brand === 'avis') return 'avif';
    if (['heic', 'heix', 'mif1', 'msf1', 'hevc'].includes(brand)) return 'heif';
  }
  if (at(0, 'BM')) return 'bmp';
  return null;
}

/**
 * Decodes to 8-bit sRGB. Alpha is flattened onto white: a transparent background reads as a
 * plain backdrop rather than black, which CLIP would see as a dark object region.
 */
export async function decodeImage(bytes: Buffer, limits: { maxPixels?: number } = {}): Promise<DecodedImage> {
  if (bytes.length === 0) throw new ImageDecodeError('the image is empty (0 bytes)');
  const maxPixels = limits.maxPixels ?? DEFAULT_MAX_PIXELS;
  let meta: Metadata;
  try {
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (err) {
    throw new ImageDecodeError('the upload could not be decoded as an image (damaged, truncated or unsupported data)', { cause: err });
  }
  // The header alone tells the size: refuse a bomb before decoding a single pixel.
  if (meta.width && meta.height && meta.width * meta.height > maxPixels) {
    throw new ImageTooLargeError(`the image is ${meta.width}×${meta.height} pixels; the limit is ${maxPixels} pixels`);
  }
  try {
    const { data, info } = await sharp(bytes, { limitInputPixels: maxPixels, failOn: 'truncated', pages: 1 })
      .rotate() // EXIF orientation
      .flatten({ background: '#ffffff' })
      .toColourspace('srgb')
      .removeAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`unexpected ${info.channels} channels after conversion`);
    return { width: info.width, height: info.height, rgb: data, format: meta.format ?? 'unknown' };
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    if (/pixel limit/i.test(reason)) {
      throw new ImageTooLargeError(`the image is larger than the limit of ${maxPixels} pixels`, { cause: err });
    }
    throw new ImageDecodeError(`the ${meta.format ?? 'image'} data could not be decoded (damaged or truncated file)`, { cause: err });
  }
}

/** NCHW float32 [B, 3, S, S]: each whole image resized to S×S (bicubic, no crop), normalised. */
export async function toPixelValues(images: DecodedImage[], cfg: PreprocessConfig): Promise<Float32Array> {
  const S = cfg.size;
  const plane = S * S;
  const out = new Float32Array(images.length * 3 * plane);
  await Promise.all(
    images.map(async (img, b) => {
      const resized = await sharp(img.rgb, { raw: { width: img.width, height: img.height, channels: 3 } })
        .resize(S, S, { fit: 'fill', kernel: 'cubic' })
        .raw()
        .toBuffer();
      const base = b * 3 * plane;
      for (let c = 0; c < 3; c++) {
        const scale = 1 / (255 * cfg.std[c]);
        const shift = cfg.mean[c] / cfg.std[c];
        const dst = base + c * plane;
        for (let i = 0; i < plane; i++) out[dst + i] = resized[i * 3 + c] * scale - shift;
      }
    }),
  );
  return out;
}

function triple(v: unknown, fallback: [number, number, number]): [number, number, number] {
  return Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'number') ? (v as [number, number, number]) : fallback;
}

/** {size, mean, std} from a Hugging Face preprocessor_config.json, CLIP defaults otherwise. */
export function readPreprocessorConfig(json: Record<string, unknown>): PreprocessConfig {
  const sizeField = json.crop_size ?? json.size;
  let size = 224;
  if (typeof sizeField === 'number') size = sizeField;
  else if (sizeField && typeof sizeField === 'object') {
    const s = sizeField as Record<string, unknown>;
    const v = s.shortest_edge ?? s.height ?? s.width;
    if (typeof v === 'number') size = v;
  }
  return { size, mean: triple(json.image_mean, CLIP_MEAN), std: triple(json.image_std, CLIP_STD) };
}
