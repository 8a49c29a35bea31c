// Decoding every input kind to 8-bit sRGB, the typed errors the HTTP layer maps, and the exact
// model input values. Fixtures are made here with sharp; nothing binary is committed.
import { describe, expect, it } from 'vitest';
import sharp, { type Sharp } from 'sharp';
import { deflateSync } from 'node:zlib';
import { decodeImage, sniffImageType, type DecodedImage } from '../../src/imaging/decode.ts';
import { ImageDecodeError, ImageTooLargeError } from '../../src/errors.ts';
import { readPreprocessorConfig, toPixelValues } from '../../src/clip/input/preprocess.ts';

type Triple = [number, number, number];

const solid = (width: number, height: number, background: string | object, channels: 3 | 4 = 3) =>
  sharp({ create: { width, height, channels, background } });

/** Left half red, right half blue: orientation changes are visible in the pixels. */
async function halves(width: number, height: number) {
  const left = await solid(Math.floor(width / 2), height, '#ff0000').png().toBuffer();
  return solid(width, height, '#0000ff').composite([{ input: left, left: 0, top: 0 }]);
}

function pixel(img: { width: number; rgb: Buffer }, x: number, y: number): number[] {
  const i = (y * img.width + x) * 3;
  return [img.rgb[i], img.rgb[i + 1], img.rgb[i + 2]];
}

/** A decoded image straight from pixel values, for exact toPixelValues checks. */
function rawImage(width: number, height: number, at: (x: number, y: number) => Triple): DecodedImage {
  const rgb = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) rgb.set(at(x, y), (y * width + x) * 3);
  return { width, height, rgb, format: 'raw' };
}

async function decodeError(bytes: Buffer, limits?: { maxPixels?: number }): Promise<Error> {
  try {
    await decodeImage(bytes, limits);
  } catch (err) {
    return err as Error;
  }
  throw new Error('decodeImage accepted the bytes');
}

/** The bytes sharp itself would still decode with failOn 'none': truly truncated, not garbage. */
async function decodesLeniently(bytes: Buffer): Promise<boolean> {
  return sharp(bytes, { failOn: 'none' })
    .raw()
    .toBuffer()
    .then(() => true, () => false);
}

// CRC-32 (ISO-HDLC), as every PNG chunk carries one.
const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(bytes: Buffer): number {
  let c = 0xffffffff;
  for (const byte of bytes) c = CRC_TABLE[(c ^ byte) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function pngChunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])));
  return Buffer.concat([head, data, crc]);
}

/** A valid-looking PNG whose header declares width × height RGB pixels, with only one row of data. */
function pngWithHeader(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type: truecolour
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', deflateSync(Buffer.alloc(1 + Math.min(width, 1000) * 3))),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

/** An uncompressed little-endian 16-bit RGB TIFF: header, one IFD of ten tags, then the samples. */
function tiff16Rgb(width: number, height: number, samples: number[]): Buffer {
  const SHORT = 3;
  const LONG = 4;
  const tags: [number, number, number][] = [
    [256, LONG, width], // ImageWidth
    [257, LONG, height], // ImageLength
    [258, SHORT, 0], // BitsPerSample: three values, stored after the IFD (offset filled below)
    [259, SHORT, 1], // Compression: none
    [262, SHORT, 2], // PhotometricInterpretation: RGB
    [273, LONG, 0], // StripOffsets (filled below)
    [277, SHORT, 3], // SamplesPerPixel
    [278, LONG, height], // RowsPerStrip
    [279, LONG, samples.length * 2], // StripByteCounts
    [284, SHORT, 1], // PlanarConfiguration: chunky
  ];
  const ifdEnd = 8 + 2 + tags.length * 12 + 4;
  const bitsAt = ifdEnd;
  const dataAt = bitsAt + 6;
  const out = Buffer.alloc(dataAt + samples.length * 2);
  out.write('II', 0, 'latin1');
  out.writeUInt16LE(42, 2);
  out.writeUInt32LE(8, 4);
  out.writeUInt16LE(tags.length, 8);
  tags.forEach(([tag, type, value], i) => {
    const at = 10 + i * 12;
    out.writeUInt16LE(tag, at);
    out.writeUInt16LE(type, at + 2);
    out.writeUInt32LE(tag === 258 ? 3 : 1, at + 4);
    const v = tag === 258 ? bitsAt : tag === 273 ? dataAt : value;
    if (type === SHORT && tag !== 258) out.writeUInt16LE(v, at + 8);
    else out.writeUInt32LE(v, at + 8);
  });
  for (let i = 0; i < 3; i++) out.writeUInt16LE(16, bitsAt + 2 * i);
  samples.forEach((v, i) => out.writeUInt16LE(v, dataAt + 2 * i));
  return out;
}

describe('decodeImage', () => {
  it('decodes PNG to 3-channel 8-bit sRGB', async () => {
    const img = await decodeImage(await solid(20, 10, '#102030').png().toBuffer());
    expect([img.width, img.height, img.format]).toEqual([20, 10, 'png']);
    expect(img.rgb.length).toBe(20 * 10 * 3);
    expect(pixel(img, 5, 5)).toEqual([16, 32, 48]);
  });

  it('applies EXIF orientation 6 (rotate 90° clockwise), swapping width and height', async () => {
    const jpeg = await (await halves(40, 20)).jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toBuffer();
    const meta = await sharp(jpeg).metadata();
    expect([meta.width, meta.height, meta.orientation]).toEqual([40, 20, 6]);
    const img = await decodeImage(jpeg);
    expect([img.width, img.height, img.format]).toEqual([20, 40, 'jpeg']);
    // Rotated clockwise, the stored left (red) half is displayed on top, the blue half below.
    const [tr, , tb] = pixel(img, 10, 5);
    const [br, , bb] = pixel(img, 10, 35);
    expect(tr).toBeGreaterThan(200);
    expect(tb).toBeLessThan(50);
    expect(br).toBeLessThan(50);
    expect(bb).toBeGreaterThan(200);
  });

  it('expands grayscale to three equal channels', async () => {
    const gray = await solid(8, 8, '#808080').toColourspace('b-w').png().toBuffer();
    expect((await sharp(gray).metadata()).channels).toBe(1);
    const img = await decodeImage(gray);
    expect(img.rgb.length).toBe(8 * 8 * 3);
    expect(pixel(img, 3, 3)).toEqual([128, 128, 128]);
  });

  it('flattens alpha onto white: transparent is white, half-transparent is blended, opaque is kept', async () => {
    const rgba = Buffer.alloc(3 * 1 * 4);
    rgba.set([0, 0, 0, 0], 0); // transparent black
    rgba.set([255, 0, 0, 128], 4); // half-transparent red
    rgba.set([0, 0, 255, 255], 8); // opaque blue
    const png = await sharp(rgba, { raw: { width: 3, height: 1, channels: 4 } }).png().toBuffer();
    expect((await sharp(png).metadata()).hasAlpha).toBe(true);
    const img = await decodeImage(png);
    expect(img.rgb.length).toBe(3 * 3);
    expect(pixel(img, 0, 0)).toEqual([255, 255, 255]);
    const [r, g, b] = pixel(img, 1, 0);
    expect(r).toBe(255);
    expect(Math.abs(g - 127)).toBeLessThanOrEqual(1);
    expect(Math.abs(b - 127)).toBeLessThanOrEqual(1);
    expect(pixel(img, 2, 0)).toEqual([0, 0, 255]);
  });

  it('flattens grayscale with alpha to three channels', async () => {
    const ga = Buffer.from([100, 255, 100, 0]); // opaque gray 100, then transparent
    const png = await sharp(ga, { raw: { width: 2, height: 1, channels: 2 } }).toColourspace('b-w').png().toBuffer();
    const meta = await sharp(png).metadata();
    expect([meta.channels, meta.space, meta.hasAlpha]).toEqual([2, 'b-w', true]);
    const img = await decodeImage(png);
    expect([pixel(img, 0, 0), pixel(img, 1, 0)]).toEqual([
      [100, 100, 100],
      [255, 255, 255],
    ]);
  });

  it('scales 16-bit PNG down to 8 bits (not clipped, not truncated to the low byte)', async () => {
    // v8 * 257 is the 16-bit value that maps exactly to the 8-bit value v8.
    const levels = [0, 1, 64, 128, 200, 255];
    const raw16 = new Uint16Array(levels.length * 3);
    levels.forEach((v, i) => raw16.set([v * 257, (255 - v) * 257, 128 * 257], i * 3));
    const png16 = await sharp(raw16, { raw: { width: levels.length, height: 1, channels: 3 } })
      .toColourspace('rgb16')
      .png()
      .toBuffer();
    const meta = await sharp(png16).metadata();
    expect([meta.depth, meta.bitsPerSample]).toEqual(['ushort', 16]);
    const img = await decodeImage(png16);
    expect(img.rgb.length).toBe(levels.length * 3);
    levels.forEach((v, x) => expect(pixel(img, x, 0)).toEqual([v, 255 - v, 128]));
  });

  it('scales 16-bit TIFF down to 8 bits', async () => {
    // sharp's TIFF writer only writes 8 bits, so the 16-bit TIFF is written by hand.
    const levels = [0, 64, 128, 255];
    const tiff16 = tiff16Rgb(levels.length, 1, levels.flatMap((v) => [v * 257, 128 * 257, (255 - v) * 257]));
    const meta = await sharp(tiff16).metadata();
    expect([meta.format, meta.depth, meta.width, meta.channels]).toEqual(['tiff', 'ushort', levels.length, 3]);
    const img = await decodeImage(tiff16);
    expect(img.format).toBe('tiff');
    levels.forEach((v, x) => expect(pixel(img, x, 0)).toEqual([v, 128, 255 - v]));
  });

  it('converts a CMYK JPEG to sRGB', async () => {
    const cmyk = await solid(16, 16, '#c03020').toColourspace('cmyk').jpeg({ quality: 95 }).toBuffer();
    const meta = await sharp(cmyk).metadata();
    expect([meta.space, meta.channels]).toEqual(['cmyk', 4]);
    const img = await decodeImage(cmyk);
    expect(img.rgb.length).toBe(16 * 16 * 3);
    // Through a CMYK profile and back the colour shifts a little but stays the same red.
    const [r, g, b] = pixel(img, 8, 8);
    expect(Math.abs(r - 0xc0)).toBeLessThan(40);
    expect(Math.abs(g - 0x30)).toBeLessThan(40);
    expect(Math.abs(b - 0x20)).toBeLessThan(40);
  });

  const avifEncodes = sharp.format.heif.output.buffer;

  it.each([
    ['webp', (s: Sharp) => s.webp({ lossless: true })],
    ['tiff', (s: Sharp) => s.tiff()],
    ['gif', (s: Sharp) => s.gif()],
    ...(avifEncodes ? [['avif', (s: Sharp) => s.avif({ lossless: true })] as const] : []),
  ] as const)('decodes %s', async (format, encode) => {
    const bytes = await encode(solid(16, 12, '#20a040')).toBuffer();
    expect(sniffImageType(bytes)).toBe(format);
    const img = await decodeImage(bytes);
    expect([img.width, img.height, img.format]).toEqual([16, 12, format]);
    const [r, g, b] = pixel(img, 8, 6);
    expect(Math.abs(r - 0x20)).toBeLessThan(24);
    expect(Math.abs(g - 0xa0)).toBeLessThan(24);
    expect(Math.abs(b - 0x40)).toBeLessThan(24);
  });

  it.skipIf(!avifEncodes)('this sharp build encodes AVIF, so the AVIF case above ran', () => {
    expect(avifEncodes).toBe(true);
  });

  it('reads only the first frame of an animated GIF', async () => {
    const frames = await Promise.all(['#ff0000', '#0000ff', '#00ff00'].map((c) => solid(10, 6, c).png().toBuffer()));
    const gif = await sharp(frames, { join: { animated: true } }).gif().toBuffer();
    const meta = await sharp(gif).metadata();
    expect([meta.pages, meta.width, meta.height]).toEqual([3, 10, 6]);
    const img = await decodeImage(gif);
    expect([img.width, img.height, img.format]).toEqual([10, 6, 'gif']);
    const [r, g, b] = pixel(img, 5, 3);
    expect(r).toBeGreaterThan(200);
    expect(g + b).toBeLessThan(60);
  });

  it('refuses zero bytes with ImageDecodeError', async () => {
    const err = await decodeError(Buffer.alloc(0));
    expect(err).toBeInstanceOf(ImageDecodeError);
    expect(err.name).toBe('ImageDecodeError');
    expect(err.message).toMatch(/empty/);
  });

  it('refuses random bytes with ImageDecodeError, keeping sharp’s reason in cause', async () => {
    const random = Buffer.from(Array.from({ length: 500 }, (_, i) => (i * 131 + ((i * i) >> 3)) % 256));
    expect(sniffImageType(random)).toBeNull();
    const err = await decodeError(random);
    expect(err).toBeInstanceOf(ImageDecodeError);
    expect(err.message).not.toMatch(/vips|sharp/i);
    expect(String((err.cause as Error).message)).toMatch(/unsupported image format/i);
  });

  it.each([
    ['png', (s: Sharp) => s.png()],
    ['jpeg', (s: Sharp) => s.jpeg()],
  ] as const)('refuses a truncated %s that a lenient decoder would accept', async (format, encode) => {
    // Noise so the data is long and the cut lands in the middle of the pixel data.
    const noise = Buffer.from(Array.from({ length: 64 * 64 * 3 }, (_, i) => (i * 2654435761) >>> 24));
    const whole = await encode(sharp(noise, { raw: { width: 64, height: 64, channels: 3 } })).toBuffer();
    const cut = whole.subarray(0, Math.floor(whole.length * 0.6));
    expect(sniffImageType(cut)).toBe(format);
    expect(await decodesLeniently(cut)).toBe(true);
    const err = await decodeError(cut);
    expect(err).toBeInstanceOf(ImageDecodeError);
    expect(err.message).toContain(format);
    expect(err.message).not.toMatch(/vips|libpng/i);
    expect(err.cause).toBeInstanceOf(Error);
    await expect(decodeImage(whole)).resolves.toMatchObject({ width: 64, height: 64 });
  });

  it('refuses a 100000×100000 PNG from its header with ImageTooLargeError, quickly and without decoding', async () => {
    const bomb = pngWithHeader(100_000, 100_000);
    // The header is well-formed (CRCs right): sharp reads it when told to ignore its own limit.
    const meta = await sharp(bomb, { limitInputPixels: false }).metadata();
    expect([meta.width, meta.height]).toEqual([100_000, 100_000]);
    const rssBefore = process.memoryUsage().rss;
    const started = performance.now();
    const err = await decodeError(bomb);
    expect(performance.now() - started).toBeLessThan(1000);
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(256 * 1024 * 1024);
    expect(err).toBeInstanceOf(ImageTooLargeError);
    expect(err.name).toBe('ImageTooLargeError');
    expect(err.message).toMatch(/100000×100000/);
  });

  it('applies the pixel limit it is given, at the boundary', async () => {
    const png = await solid(100, 100, '#000').png().toBuffer();
    await expect(decodeImage(png, { maxPixels: 9_999 })).rejects.toBeInstanceOf(ImageTooLargeError);
    await expect(decodeImage(png, { maxPixels: 10_000 })).resolves.toMatchObject({ width: 100, height: 100 });
  });
});

describe('sniffImageType', () => {
  it('recognises every format sharp writes here by its magic bytes', async () => {
    const base = () => solid(4, 4, '#336699');
    expect(sniffImageType(await base().jpeg().toBuffer())).toBe('jpeg');
    expect(sniffImageType(await base().png().toBuffer())).toBe('png');
    expect(sniffImageType(await base().webp().toBuffer())).toBe('webp');
    expect(sniffImageType(await base().gif().toBuffer())).toBe('gif');
    expect(sniffImageType(await base().tiff().toBuffer())).toBe('tiff');
    expect(sniffImageType(await base().tiff().withMetadata().toBuffer())).toBe('tiff');
  });

  it('tells AVIF from HEIC by the ftyp brands, and recognises BMP and big-endian TIFF', () => {
    const ftyp = (...brands: string[]) => {
      const box = Buffer.alloc(8 + 4 + 4 * brands.length);
      box.writeUInt32BE(box.length, 0);
      box.write('ftyp', 4, 'latin1');
      box.write(brands[0], 8, 'latin1');
      brands.slice(1).forEach((b, i) => box.write(b, 16 + 4 * i, 'latin1'));
      return Buffer.concat([box, Buffer.alloc(16)]);
    };
    expect(sniffImageType(ftyp('avif', 'mif1', 'miaf'))).toBe('avif');
    expect(sniffImageType(ftyp('mif1', 'avif'))).toBe('avif');
    expect(sniffImageType(ftyp('heic', 'mif1', 'heic'))).toBe('heif');
    expect(sniffImageType(ftyp('isom', 'mp41'))).toBeNull(); // an MP4 video
    const bmp = Buffer.alloc(54);
    bmp.write('BM', 0, 'latin1');
    bmp.writeUInt32LE(40, 14); // BITMAPINFOHEADER
    expect(sniffImageType(bmp)).toBe('bmp');
    expect(sniffImageType(Buffer.from('BM is also how some text starts'))).toBeNull();
    expect(sniffImageType(Buffer.from([0x4d, 0x4d, 0x00, 0x2a, 0, 0, 0, 8]))).toBe('tiff');
  });

  it('returns null for non-images and for too few bytes', () => {
    expect(sniffImageType(Buffer.alloc(0))).toBeNull();
    expect(sniffImageType(Buffer.from([0xff, 0xd8]))).toBeNull();
    expect(sniffImageType(Buffer.from('%PDF-1.7\n'))).toBeNull();
    expect(sniffImageType(Buffer.from('{"image": "no"}'))).toBeNull();
  });
});

describe('toPixelValues', () => {
  const CLIP = readPreprocessorConfig({});

  it('normalises a constant image to hand-computed CLIP values, after resizing', async () => {
    const img = await decodeImage(await solid(10, 6, '#ff8000').png().toBuffer());
    const px = toPixelValues([img], { ...CLIP, size: 4 });
    expect(px).toBeInstanceOf(Float32Array);
    expect(px.length).toBe(3 * 16);
    // (255/255 − 0.48145466) / 0.26862954, (128/255 − 0.4578275) / 0.26130258, (0 − 0.40821073) / 0.27577711
    const expected = [1.930336254, 0.168897239, -1.480219769];
    for (let c = 0; c < 3; c++) for (let i = 0; i < 16; i++) expect(px[c * 16 + i]).toBeCloseTo(expected[c], 5);
  });

  it('lays values out as NCHW: batch, then channel planes, then rows', async () => {
    const S = 3;
    // Already S×S, so no resampling: every value is known exactly.
    const at = (b: number) => (x: number, y: number): Triple => [10 * y + x + b, 100 + 10 * y + x, 200 + b];
    const images = [rawImage(S, S, at(0)), rawImage(S, S, at(1))];
    const cfg = { size: S, mean: [0, 0, 0] as Triple, std: [1 / 255, 1 / 255, 1 / 255] as Triple };
    const px = toPixelValues(images, cfg);
    expect(px.length).toBe(2 * 3 * S * S);
    for (let b = 0; b < 2; b++)
      for (let c = 0; c < 3; c++)
        for (let y = 0; y < S; y++)
          for (let x = 0; x < S; x++) expect(px[((b * 3 + c) * S + y) * S + x]).toBeCloseTo(at(b)(x, y)[c], 3);
  });

  it('squashes the whole image into the square (no crop), so every region reaches the model', async () => {
    // Three vertical bands, red | green | blue, 3:1: a centre crop would see only green.
    const bands = rawImage(36, 12, (x) => (x < 12 ? [255, 0, 0] : x < 24 ? [0, 255, 0] : [0, 0, 255]));
    const cfg = { size: 6, mean: [0, 0, 0] as Triple, std: [1, 1, 1] as Triple };
    const px = toPixelValues([bands], cfg);
    const at = (c: number, x: number, y: number) => px[c * 36 + y * 6 + x];
    for (let y = 0; y < 6; y++) {
      expect(at(0, 0, y)).toBeGreaterThan(0.9); // left column red
      expect(at(1, 0, y)).toBeLessThan(0.1);
      for (const x of [2, 3]) {
        // middle columns green
        expect(at(1, x, y)).toBeGreaterThan(0.6);
        expect(at(1, x, y)).toBeGreaterThan(Math.max(at(0, x, y), at(2, x, y)));
      }
      expect(at(2, 5, y)).toBeGreaterThan(0.9); // right column blue
      expect(at(0, 5, y)).toBeLessThan(0.1);
    }
  });

  it('keeps images of different sizes apart in the batch', async () => {
    const white = rawImage(9, 5, () => [255, 255, 255]);
    const black = rawImage(3, 7, () => [0, 0, 0]);
    const cfg = { size: 4, mean: [0.5, 0.25, 0.75] as Triple, std: [0.5, 0.25, 0.125] as Triple };
    const px = toPixelValues([white, black], cfg);
    expect(px.length).toBe(2 * 3 * 16);
    const plane = (b: number, c: number) => Array.from(px.subarray((b * 3 + c) * 16, (b * 3 + c + 1) * 16));
    const expected = [
      [(1 - 0.5) / 0.5, (1 - 0.25) / 0.25, (1 - 0.75) / 0.125],
      [(0 - 0.5) / 0.5, (0 - 0.25) / 0.25, (0 - 0.75) / 0.125],
    ];
    for (let b = 0; b < 2; b++) for (let c = 0; c < 3; c++) for (const v of plane(b, c)) expect(v).toBeCloseTo(expected[b][c], 5);
  });

  it('returns an empty tensor for an empty batch and refuses an inconsistent image', async () => {
    expect(toPixelValues([], CLIP).length).toBe(0);
    const broken = { width: 4, height: 4, rgb: Buffer.alloc(10), format: 'raw' };
    expect(() => toPixelValues([broken], CLIP)).toThrow(RangeError);
  });
});

describe('readPreprocessorConfig', () => {
  it('reads size, mean and std in their Hugging Face forms', () => {
    expect(readPreprocessorConfig({ crop_size: { height: 336, width: 336 }, image_mean: [0.1, 0.2, 0.3], image_std: [1, 2, 3] })).toEqual({
      size: 336,
      mean: [0.1, 0.2, 0.3],
      std: [1, 2, 3],
    });
    expect(readPreprocessorConfig({ size: { shortest_edge: 240 } }).size).toBe(240);
    expect(readPreprocessorConfig({ size: { height: 256, width: 256 } }).size).toBe(256);
    expect(readPreprocessorConfig({ size: 224 }).size).toBe(224);
    expect(readPreprocessorConfig({ crop_size: 288, size: { shortest_edge: 320 } }).size).toBe(288);
  });

  it('falls back to the CLIP defaults for missing or unusable fields', () => {
    const defaults = { size: 224, mean: [0.48145466, 0.4578275, 0.40821073], std: [0.26862954, 0.26130258, 0.27577711] };
    expect(readPreprocessorConfig({})).toEqual(defaults);
    expect(readPreprocessorConfig(null)).toEqual(defaults);
    expect(readPreprocessorConfig({ size: -3, image_mean: [0.5, 0.5], image_std: [0.5, 0, 0.5] })).toEqual(defaults);
    expect(readPreprocessorConfig({ size: { shortest_edge: '224' }, image_mean: ['a', 'b', 'c'] })).toEqual(defaults);
  });
});
