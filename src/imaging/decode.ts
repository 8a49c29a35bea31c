// Image bytes → 8-bit RGB pixels (values as stored, as PIL reads them; see DecodeOptions), with sharp: any common format decoded (EXIF orientation
// applied), its size checked from the header before any pixel is decoded.
import sharp, { type Metadata } from 'sharp';
import { ImageDecodeError, ImageTooLargeError, UnsupportedMediaTypeError } from '../errors.ts';
import { decodeBmp, readBmpHeader } from './bmp.ts';

// libvips' operation cache keeps recent results for reuse (up to 50 MB by default); every
// upload is a new image, so here it never hits and only holds memory.
sharp.cache(false);

export interface DecodedImage {
  /** Displayed size: EXIF orientation already applied. */
  width: number;
  height: number;
  /** 8-bit RGB (as stored, or sRGB with iccConvert), 3 channels, row-major, orientation applied. */
  rgb: Buffer;
  /** What the bytes were: jpeg, png, webp, gif, tiff, avif, heif… */
  format: string;
}


/** 100 megapixels: far above any real photo, far below what would exhaust memory. */
export const DEFAULT_MAX_PIXELS = 100_000_000;
/** Longest width or height decoded when the caller sets no limit: JPEG's own ceiling. */
export const DEFAULT_MAX_SIDE = 65_535;


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
 * Formats recognised from their magic bytes that this build cannot decode: decodeImage answers
 * 415 unsupported_media_type naming them, rather than 422 "damaged".
 */
const UNSUPPORTED: Record<string, string> = {
  heif: 'HEIC',
  jxl: 'JPEG XL',
  jp2: 'JPEG 2000',
  psd: 'Photoshop (PSD)',
};

/**
 * The image type from the magic bytes, or null: a cheap check that lets the HTTP layer answer
 * 415 before decoding. HEVC-coded HEIF, JPEG XL, JPEG 2000 and PSD are recognised but not
 * decodable (see UNSUPPORTED); BMP is decoded by bmp.ts.
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
  if ((b.length >= 2 && b[0] === 0xff && b[1] === 0x0a) || at(0, '\x00\x00\x00\x0cJXL \r\n\x87\n')) return 'jxl';
  if (at(0, '\x00\x00\x00\x0cjP  \r\n\x87\n') || (b.length >= 4 && b.readUInt32BE(0) === 0xff4fff51)) return 'jp2';
  if (at(0, '8BPS')) return 'psd';
  return null;
}

/** sharp calls AVIF "heif"; the compression tells them apart. */
function formatName(meta: Metadata): string {
  if (meta.format === 'heif' && meta.compression === 'av1') return 'avif';
  return meta.format ?? 'unknown';
}

export interface DecodeOptions {
  maxPixels?: number;
  maxSide?: number;
  /**
   * Convert RGB/grayscale pixels from an embedded ICC profile to sRGB (setting ICC_CONVERT=1).
   * Default false: the stored values are used as they are, as PIL's `Image.convert('RGB')`
   * does, which is what CLIP and anomalib were trained and evaluated with.
   */
  iccConvert?: boolean;
}

/**
 * Decodes to 8-bit RGB, 3 channels, as displayed:
 * - EXIF orientation is applied, so width/height are the displayed ones;
 * - alpha is flattened onto white: a transparent background then reads as a plain backdrop,
 *   whereas black (what dropping the alpha of a typical RGBA export gives) would look to CLIP
 *   like a dark object, and whatever colour hides under alpha 0 is arbitrary;
 * - an embedded ICC profile is ignored for RGB and grayscale images (PIL's behaviour) unless
 *   `iccConvert`; CMYK is always converted to sRGB (with its profile if embedded), grayscale
 *   and 16-bit inputs to 8-bit RGB;
 * - only the first frame of an animated GIF/WebP or multi-page TIFF is read.
 * The pixel and side limits are checked against the header before any pixel is decoded.
 */
/**
 * Refuses a request whose images together (the image and its references) hold more than
 * `maxPixels`, read from each header (no pixel is decoded). An image over its own limits
 * (`perImage`, as decodeImage checks them) is refused for those first, so the message names the
 * limit that binds. A header that cannot be read counts 0 here: decoding it reports that.
 */
export async function checkTotalPixels(images: Buffer[], maxPixels: number, perImage: Pick<DecodeOptions, 'maxPixels' | 'maxSide'> = {}): Promise<void> {
  const sizes = await Promise.all(
    images.map(async (bytes) => {
      try {
        const meta = await sharp(bytes, { limitInputPixels: false }).metadata();
        return { width: meta.width ?? 0, height: meta.height ?? 0 };
      } catch {
        return { width: 0, height: 0 };
      }
    }),
  );
  sizes.forEach((s, i) => checkLimits(s.width, s.height, perImage.maxPixels ?? DEFAULT_MAX_PIXELS, perImage.maxSide ?? DEFAULT_MAX_SIDE, i === 0 ? 'the image' : `reference ${i}`));
  const total = sizes.reduce((sum, s) => sum + s.width * s.height, 0);
  if (total <= maxPixels) return;
  const limit = `the limit per request is ${maxPixels} pixels (MAX_REQUEST_PIXELS)`;
  if (images.length === 1) throw new ImageTooLargeError(`the image is ${sizes[0].width}×${sizes[0].height} pixels; ${limit}`);
  const refs = images.length - 1;
  throw new ImageTooLargeError(`the image and its ${refs} reference image${refs > 1 ? 's' : ''} hold ${total} pixels together; ${limit}`);
}

export async function decodeImage(bytes: Buffer, limits: DecodeOptions = {}): Promise<DecodedImage> {
  if (bytes.length === 0) throw new ImageDecodeError('the image is empty (0 bytes)');
  const maxPixels = limits.maxPixels ?? DEFAULT_MAX_PIXELS;
  const maxSide = limits.maxSide ?? DEFAULT_MAX_SIDE;
  const sniffed = sniffImageType(bytes);
  const unsupported = sniffed === null ? undefined : UNSUPPORTED[sniffed];
  if (unsupported !== undefined) throw new UnsupportedMediaTypeError(`${unsupported} images are not supported: convert to JPEG or PNG`);
  if (sniffed === 'bmp') return decodeBmpImage(bytes, maxPixels, maxSide);
  let meta: Metadata;
  try {
    // Header only: no pixels are decoded here, so no limit is needed yet.
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (err) {
    throw new ImageDecodeError('the upload could not be read as an image (damaged, truncated or unsupported format)', { cause: err });
  }
  checkLimits(meta.width ?? 0, meta.height ?? 0, maxPixels, maxSide);
  const format = formatName(meta);
  try {
    // failOn 'truncated' rejects cut-off files (the default 'warning' would also reject harmless
    // quirks such as extraneous bytes in phone JPEGs; 'none' would return grey-filled images).
    const ignoreIcc = limits.iccConvert !== true && meta.space !== 'cmyk';
    const { data, info } = await sharp(bytes, { limitInputPixels: maxPixels, failOn: 'truncated', pages: 1, ignoreIcc })
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

function checkLimits(width: number, height: number, maxPixels: number, maxSide: number, what = 'the image'): void {
  if (width * height > maxPixels) {
    throw new ImageTooLargeError(`${what} is ${width}×${height} pixels; the limit is ${maxPixels} pixels per image (MAX_PIXELS)`);
  }
  // A 1×10⁸ strip passes the pixel count but not the side limit.
  if (width > maxSide || height > maxSide) {
    throw new ImageTooLargeError(`${what} is ${width}×${height} pixels; each side is limited to ${maxSide} pixels (MAX_SIDE)`);
  }
}

/** BMP: header first (limits), then bmp.ts. BMP has no orientation; its pixels are sRGB. */
function decodeBmpImage(bytes: Buffer, maxPixels: number, maxSide: number): DecodedImage {
  const header = readBmpHeader(bytes);
  if (typeof header === 'string') {
    if (/not supported/.test(header)) throw new UnsupportedMediaTypeError(header);
    throw new ImageDecodeError(`the bmp image could not be decoded (${header})`);
  }
  if (header.width < 1 || header.height < 1) throw new ImageDecodeError(`the bmp image has an invalid size ${header.width}×${header.height}`);
  checkLimits(header.width, header.height, maxPixels, maxSide);
  try {
    return { width: header.width, height: header.height, rgb: decodeBmp(bytes, header), format: 'bmp' };
  } catch (err) {
    throw new ImageDecodeError('the bmp image could not be decoded (damaged or truncated file)', { cause: err });
  }
}

/** What toPixelValues needs of an image: 8-bit sRGB, interleaved (a DecodedImage is one). */
export interface RgbImage {
  width: number;
  height: number;
  rgb: Uint8Array;
}


/** width × height from the header (no pixel decoded), or null when the header does not read. */
export async function headerPixels(bytes: Buffer): Promise<number | null> {
  try {
    const meta = await sharp(bytes, { limitInputPixels: false }).metadata();
    return (meta.width ?? 0) * (meta.height ?? 0);
  } catch {
    return null;
  }
}
