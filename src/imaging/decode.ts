// Image bytes → model input, with sharp: decode any common format to 8-bit sRGB (EXIF
// orientation applied); then (resize.ts) resize the whole image to S×S and normalise.
import sharp, { type Metadata } from 'sharp';
import { resizeRgbToPlanes } from './resample-bicubic.ts';

export interface DecodedImage {
  /** Displayed size: EXIF orientation already applied. */
  width: number;
  height: number;
  /** 8-bit sRGB, 3 channels, row-major, orientation applied. */
  rgb: Buffer;
  /** What the bytes were: jpeg, png, webp, gif, tiff, avif, heif… */
  format: string;
}

export interface PreprocessConfig {
  size: number;
  mean: [number, number, number];
  std: [number, number, number];
}

/** Bytes that are not a decodable image: empty, damaged, truncated or unsupported (HTTP 422). */
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

/** 100 megapixels: far above any real photo, far below what would exhaust memory. */
export const DEFAULT_MAX_PIXELS = 100_000_000;
/** Longest width or height decoded when the caller sets no limit: JPEG's own ceiling. */
export const DEFAULT_MAX_SIDE = 65_535;

export const CLIP_IMAGE_SIZE = 224;
export const CLIP_MEAN: [number, number, number] = [0.48145466, 0.4578275, 0.40821073];
export const CLIP_STD: [number, number, number] = [0.26862954, 0.26130258, 0.27577711];

const HEIF_BRANDS = new Set(['heic', 'heix', 'heim', 'heis', 'hevc', 'hevx', 'mif1', 'msf1']);

/** ISO-BMFF brands (major and compatible) of an ftyp box at the start of the bytes. */
function ftypBrands(b: Buffer): string[] {
  const boxSize = b.readUInt32BE(0);
  const end = Math.min(b.length, boxSize >= 16 ? boxSize : 16);
  const brands = [b.toString('latin1', 8, 12)];
  // Bytes 12..16 are the minor version; compatible brands follow, 4 bytes each.
  for (let at = 16; at + 4 <= end; at += 4) brands.push(b.toString('latin1', at, at + 4));
  return brands;
}

/**
 * The image type from the magic bytes, or null: a cheap check that lets the HTTP layer answer
 * 415 before decoding. BMP and HEVC-coded HEIF are recognised but this sharp build cannot decode
 * them; decodeImage then raises ImageDecodeError.
 */
export function sniffImageType(bytes: Buffer): string | null {
  const b = bytes;
  const at = (offset: number, text: string) => b.length >= offset + text.length && b.toString('latin1', offset, offset + text.length) === text;
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (at(0, '\x89PNG\r\n\x1a\n')) return 'png';
  if (at(0, 'RIFF') && at(8, 'WEBP')) return 'webp';
  if (at(0, 'GIF87a') || at(0, 'GIF89a')) return 'gif';
  // Classic TIFF (42) and BigTIFF (43), either byte order.
  if (at(0, 'II*\x00') || at(0, 'MM\x00*') || at(0, 'II+\x00') || at(0, 'MM\x00+')) return 'tiff';
  if (b.length >= 16 && at(4, 'ftyp')) {
    const brands = ftypBrands(b);
    if (brands.includes('avif') || brands.includes('avis')) return 'avif';
    if (brands.some((brand) => HEIF_BRANDS.has(brand))) return 'heif';
    return null;
  }
  // "BM" alone is too common in arbitrary bytes: also require a known DIB header size.
  if (at(0, 'BM') && b.length >= 18 && [12, 40, 52, 56, 64, 108, 124].includes(b.readUInt32LE(14))) return 'bmp';
  return null;
}

/** sharp calls AVIF "heif"; the compression tells them apart. */
function formatName(meta: Metadata): string {
  if (meta.format === 'heif' && meta.compression === 'av1') return 'avif';
  return meta.format ?? 'unknown';
}

/**
 * Decodes to 8-bit sRGB, 3 channels, as displayed:
 * - EXIF orientation is applied, so width/height are the displayed ones;
 * - alpha is flattened onto white: a transparent background then reads as a plain backdrop,
 *   whereas black (what dropping the alpha of a typical RGBA export gives) would look to CLIP
 *   like a dark object, and whatever colour hides under alpha 0 is arbitrary;
 * - CMYK, grayscale and 16-bit inputs are converted to 8-bit sRGB (ICC profile if embedded);
 * - only the first frame of an animated GIF/WebP or multi-page TIFF is read.
 * The pixel and side limits are checked against the header before any pixel is decoded.
 */
export async function decodeImage(bytes: Buffer, limits: { maxPixels?: number; maxSide?: number } = {}): Promise<DecodedImage> {
  if (bytes.length === 0) throw new ImageDecodeError('the image is empty (0 bytes)');
  const maxPixels = limits.maxPixels ?? DEFAULT_MAX_PIXELS;
  const maxSide = limits.maxSide ?? DEFAULT_MAX_SIDE;
  let meta: Metadata;
  try {
    // Header only: no pixels are decoded here, so no limit is needed yet.
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (err) {
    throw new ImageDecodeError('the upload could not be read as an image (damaged, truncated or unsupported format)', { cause: err });
  }
  const pixels = (meta.width ?? 0) * (meta.height ?? 0);
  if (pixels > maxPixels) {
    throw new ImageTooLargeError(`the image is ${meta.width}×${meta.height} pixels; the limit is ${maxPixels} pixels`);
  }
  // A 1×10⁸ strip passes the pixel count but not the side limit.
  if ((meta.width ?? 0) > maxSide || (meta.height ?? 0) > maxSide) {
    throw new ImageTooLargeError(`the image is ${meta.width}×${meta.height} pixels; each side is limited to ${maxSide} pixels`);
  }
  const format = formatName(meta);
  try {
    // failOn 'truncated' rejects cut-off files (the default 'warning' would also reject harmless
    // quirks such as extraneous bytes in phone JPEGs; 'none' would return grey-filled images).
    const { data, info } = await sharp(bytes, { limitInputPixels: maxPixels, failOn: 'truncated', pages: 1 })
      .autoOrient()
      .flatten({ background: '#ffffff' })
      .toColourspace('srgb')
      .removeAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`unexpected ${info.channels} channels after conversion`);
    return { width: info.width, height: info.height, rgb: data, format };
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    // The header check covers every format sharp reports sizes for; this is the backstop.
    if (/pixel limit/i.test(reason)) {
      throw new ImageTooLargeError(`the image is larger than the limit of ${maxPixels} pixels`, { cause: err });
    }
    throw new ImageDecodeError(`the ${format} image could not be decoded (damaged or truncated file)`, { cause: err });
  }
}

/** What toPixelValues needs of an image: 8-bit sRGB, interleaved (a DecodedImage is one). */
export interface RgbImage {
  width: number;
  height: number;
  rgb: Uint8Array;
}

/**
 * NCHW float32 [B, 3, S, S]: each whole image resized to S×S (aspect ratio not kept, no crop,
 * so the anomaly map covers every pixel) with torchvision's antialiased bicubic (resize.ts),
 * scaled to 0..1 and normalised per channel. Synchronous CPU work: the service calls it inside
 * its inference workers.
 */
export function toPixelValues(images: readonly RgbImage[], cfg: PreprocessConfig): Float32Array {
  const S = cfg.size;
  const plane = S * S;
  const out = new Float32Array(images.length * 3 * plane);
  images.forEach((img, b) => {
    if (img.rgb.length !== img.width * img.height * 3) {
      throw new RangeError(`image ${b}: ${img.rgb.length} bytes is not ${img.width}×${img.height}×3`);
    }
    const planes = resizeRgbToPlanes(img.rgb, img.width, img.height, S, S);
    const base = b * 3 * plane;
    for (let c = 0; c < 3; c++) {
      // (v / 255 - mean) / std, folded into one multiply-add.
      const scale = 1 / (255 * cfg.std[c]);
      const shift = cfg.mean[c] / cfg.std[c];
      const src = c * plane;
      const dst = base + c * plane;
      for (let i = 0; i < plane; i++) out[dst + i] = planes[src + i] * scale - shift;
    }
  });
  return out;
}

function triple(v: unknown, fallback: [number, number, number], positive = false): [number, number, number] {
  if (!Array.isArray(v) || v.length !== 3) return fallback;
  const ok = v.every((x) => typeof x === 'number' && Number.isFinite(x) && (!positive || x > 0));
  return ok ? [v[0], v[1], v[2]] : fallback;
}

function sizeOf(field: unknown): number | undefined {
  const valid = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v > 0;
  if (valid(field)) return field;
  if (field && typeof field === 'object') {
    const s = field as Record<string, unknown>;
    for (const v of [s.height, s.width, s.shortest_edge]) if (valid(v)) return v;
  }
  return undefined;
}

/**
 * {size, mean, std} from a Hugging Face preprocessor_config.json, CLIP defaults otherwise.
 * crop_size wins over size: it is the square the model was trained on, and this service
 * squashes the whole image into that square instead of resizing then cropping.
 */
export function readPreprocessorConfig(json: unknown): PreprocessConfig {
  const j = json && typeof json === 'object' ? (json as Record<string, unknown>) : {};
  return {
    size: sizeOf(j.crop_size) ?? sizeOf(j.size) ?? CLIP_IMAGE_SIZE,
    mean: triple(j.image_mean, CLIP_MEAN),
    std: triple(j.image_std, CLIP_STD, true),
  };
}
