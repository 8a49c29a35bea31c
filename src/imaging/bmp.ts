// BMP (Windows bitmap, common from industrial cameras), which this sharp/libvips build cannot
// read (`sharp(bmp).metadata()` rejects it as an unsupported format). The header is read here
// first, so the size limits apply before any pixel is decoded; the pixels come from bmp-ts
// (1/4/8-bit palettes, RLE, 16/24/32-bit and bit fields, bottom-up and top-down rows).
import { decode as decodeBmpPixels } from 'bmp-ts';

export interface BmpHeader {
  width: number;
  height: number;
  bitsPerPixel: number;
  compression: number;
  /** Bytes from the file start to the pixel array. */
  pixelOffset: number;
  headerSize: number;
  /** A 32/16-bit image with an alpha mask (V3+ header or BI_ALPHABITFIELDS). */
  hasAlpha: boolean;
}

const BI_BITFIELDS = 3;
const BI_ALPHABITFIELDS = 6;

/** The BITMAPINFOHEADER fields (40-byte header or later), or a reason it cannot be read. */
export function readBmpHeader(b: Buffer): BmpHeader | string {
  if (b.length < 54) return 'the file is shorter than a BMP header';
  const headerSize = b.readUInt32LE(14);
  if (headerSize < 40) return `BMP with a ${headerSize}-byte (OS/2) header is not supported: convert to PNG`;
  const width = b.readInt32LE(18);
  const height = Math.abs(b.readInt32LE(22));
  const bitsPerPixel = b.readUInt16LE(28);
  const compression = b.readUInt32LE(30);
  if (![1, 4, 8, 16, 24, 32].includes(bitsPerPixel)) return `BMP with ${bitsPerPixel} bits per pixel is not supported`;
  if (compression > BI_BITFIELDS && compression !== BI_ALPHABITFIELDS) return `BMP with compression ${compression} (embedded JPEG/PNG) is not supported`;
  const maskAt = 14 + 40 + 12;
  const hasAlpha = (bitsPerPixel === 32 || bitsPerPixel === 16) && (headerSize >= 56 || compression === BI_ALPHABITFIELDS) && b.length >= maskAt + 4 && b.readUInt32LE(maskAt) !== 0;
  return { width, height, bitsPerPixel, compression, pixelOffset: b.readUInt32LE(10), headerSize, hasAlpha };
}

/**
 * 8-bit RGB pixels, top row first; alpha (when the file has an alpha mask) flattened onto
 * white, as decode.ts does for every format. Throws on damaged or truncated files.
 */
export function decodeBmp(b: Buffer, header: BmpHeader): Buffer {
  // bmp-ts reads the pixels right after the header, masks and palette, ignoring the pixel
  // offset of the file header: close any gap (e.g. an ICC profile or padding) before it.
  const masks = header.headerSize === 40 && (header.compression === BI_BITFIELDS || header.compression === BI_ALPHABITFIELDS) ? (header.compression === BI_ALPHABITFIELDS ? 16 : 12) : 0;
  const colors = b.readUInt32LE(46);
  const paletteEntries = header.bitsPerPixel <= 8 || colors > 0 ? (colors === 0 ? 1 << header.bitsPerPixel : colors) : 0;
  const expected = 14 + header.headerSize + masks + 4 * paletteEntries;
  if (header.pixelOffset < expected || header.pixelOffset > b.length) throw new Error(`pixel offset ${header.pixelOffset} is outside the file`);
  const bytes = header.pixelOffset === expected ? b : Buffer.concat([b.subarray(0, expected), b.subarray(header.pixelOffset)]);
  // ABGR per pixel: the byte order bmp-ts writes for every bit depth (its palette path ignores toRGBA).
  const { data, width, height } = decodeBmpPixels(bytes, { toRGBA: false });
  if (width !== header.width || height !== header.height) throw new Error('BMP size changed while decoding');
  // Writers of XRGB files often set an alpha mask yet leave every alpha byte 0: opaque then.
  let alpha = header.hasAlpha;
  if (alpha) {
    alpha = false;
    for (let i = 0; i < data.length; i += 4) if (data[i] !== 0) { alpha = true; break; }
  }
  const rgb = Buffer.allocUnsafe(width * height * 3);
  for (let i = 0, o = 0; o < rgb.length; i += 4, o += 3) {
    const r = data[i + 3];
    const g = data[i + 2];
    const bl = data[i + 1];
    if (alpha) {
      const a = data[i];
      const k = 255 - a;
      rgb[o] = Math.round((r * a + 255 * k) / 255);
      rgb[o + 1] = Math.round((g * a + 255 * k) / 255);
      rgb[o + 2] = Math.round((bl * a + 255 * k) / 255);
    } else {
      rgb[o] = r;
      rgb[o + 1] = g;
      rgb[o + 2] = bl;
    }
  }
  return rgb;
}
