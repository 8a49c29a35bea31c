// Decoding every input kind to 8-bit sRGB and the exact model input values. Fixtures are made
// here with sharp; nothing binary is committed.
import { describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { deflateSync } from 'node:zlib';
import {
  decodeImage,
  ImageDecodeError,
  ImageTooLargeError,
  readPreprocessorConfig,
  sniffImageType,
  toPixelValues,
} from '../../src/clip/preprocess.ts';

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

describe('decodeImage', () => {
  it('decodes PNG to 3-channel sRGB', async () => {
    const img = await decodeImage(await solid(20, 10, '#102030').png().toBuffer());
    expect([img.width, img.height, img.format]).toEqual([20, 10, 'png']);
    expect(img.rgb.length).toBe(20 * 10 * 3);
    expect(pixel(img, 5, 5)).toEqual([16, 32, 48]);
  });

  it('applies EXIF orientation (6: rotate 90° clockwise), swapping width and height', async () => {
    const raw = await (await halves(40, 20)).jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toBuffer();
    const img = await decodeImage(raw);
    expect([img.width, img.height]).toEqual([20, 40]);
    // Rotated clockwise, the red left half ends up on top.
    const top = pixel(img, 10, 5);
    const bottom = pixel(img, 10, 35);
    expect(top[0]).toBeGreaterThan(200);
    expect(bottom[2]).toBeGreaterThan(200);
  });

  it('expands grayscale to three equal channels', async () => {
    const gray = await solid(8, 8, '#808080').toColourspace('b-w').png().toBuffer();
    expect((await sharp(gray).metadata()).channels).toBe(1);
    const img = await decodeImage(gray);
    expect(pixel(img, 3, 3)).toEqual([128, 128, 128]);
  });

  it('flattens alpha onto white', async () => {
    const transparent = await solid(8, 8, { r: 0, g: 0, b: 0, alpha: 0 }, 4).png().toBuffer();
    const img = await decodeImage(transparent);
    expect(pixel(img, 1, 1)).toEqual([255, 255, 255]);
  });

  it('converts 16-bit PNG to 8-bit', async () => {
    const png16 = await solid(8, 8, '#4080c0').toColourspace('rgb16').png().toBuffer();
    expect((await sharp(png16).metadata()).depth).toBe('ushort');
    const img = await decodeImage(png16);
    expect(img.rgb.length).toBe(8 * 8 * 3);
    const [r, g, b] = pixel(img, 4, 4);
    expect(Math.abs(r - 0x40)).toBeLessThanOrEqual(1);
    expect(Math.abs(g - 0x80)).toBeLessThanOrEqual(1);
    expect(Math.abs(b - 0xc0)).toBeLessThanOrEqual(1);
  });

  it('converts a CMYK JPEG to sRGB', async () => {
    const cmyk = await solid(16, 16, '#c03020').toColourspace('cmyk').jpeg({ quality: 95 }).toBuffer();
    expect((await sharp(cmyk).metadata()).space).toBe('cmyk');
    const img = await decodeImage(cmyk);
    const [r, g, b] = pixel(img, 8, 8);
    expect(r).toBeGreaterThan(150);
    expect(g).toBeLessThan(100);
    expect(b).toBeLessThan(100);
  });

  it.each([
    ['webp', (s: sharp.Sharp) => s.webp({ lossless: true })],
    ['tiff', (s: sharp.Sharp) => s.tiff()],
    ['gif', (s: sharp.Sharp) => s.gif()],
    ['heif', (s: sharp.Sharp) => s.avif({ lossless: true })],
  ] as const)('decodes %s', async (format, encode) => {
    const bytes = await encode(solid(16, 12, '#20a040')).toBuffer();
    expect(sniffImageType(bytes)).toBe(format === 'heif' ? 'avif' : format);
    const img = await decodeImage(bytes);
    expect([img.width, img.height]).toEqual([16, 12]);
    const [r, g, b] = pixel(img, 8, 6);
    expect(g).toBeGreaterThan(r);
    expect(g).toBeGreaterThan(b);
  });

  it('refuses zero bytes, random bytes and truncated files with ImageDecodeError', async () => {
    const png = await (await halves(64, 64)).png().toBuffer();
    const jpeg = await (await halves(64, 64)).jpeg().toBuffer();
    const random = Buffer.from(Array.from({ length: 500 }, (_, i) => (i * 131) % 256));
    for (const bad of [Buffer.alloc(0), random, png.subarray(0, png.length >> 1), jpeg.subarray(0, jpeg.length >> 1)]) {
      await expect(decodeImage(bad)).rejects.toBeInstanceOf(ImageDecodeError);
    }
  });

  it('refuses a decompression bomb from its header, quickly', async () => {
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(100_000, 0);
    ihdr.writeUInt32BE(100_000, 4);
    ihdr[8] = 8;
    ihdr[9] = 2;
    // sharp reads the header without checking CRCs strictly here; give it a valid structure anyway.
    const chunk = (type: string, data: Buffer) => {
      const len = Buffer.alloc(4);
      len.writeUInt32BE(data.length);
      return Buffer.concat([len, Buffer.from(type), data, Buffer.alloc(4)]);
    };
    const bomb = Buffer.concat([
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
      chunk('IHDR', ihdr),
      chunk('IDAT', deflateSync(Buffer.alloc(10))),
      chunk('IEND', Buffer.alloc(0)),
    ]);
    const started = performance.now();
    await expect(decodeImage(bomb)).rejects.toBeInstanceOf(ImageTooLargeError);
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it('applies the pixel limit it is given', async () => {
    const png = await solid(100, 100, '#000').png().toBuffer();
    await expect(decodeImage(png, { maxPixels: 9_999 })).rejects.toBeInstanceOf(ImageTooLargeError);
    await expect(decodeImage(png, { maxPixels: 10_000 })).resolves.toMatchObject({ width: 100 });
  });
});

describe('toPixelValues', () => {
  const cfg = { size: 4, mean: [0.5, 0.25, 0.75] as [number, number, number], std: [0.5, 0.25, 0.125] as [number, number, number] };

  it('normalises a constant image to hand-computed values in NCHW order', async () => {
    const img = await decodeImage(await solid(10, 6, '#ff8000').png().toBuffer());
    const px = await toPixelValues([img], cfg);
    expect(px.length).toBe(3 * 16);
    const expected = [(1 - 0.5) / 0.5, (128 / 255 - 0.25) / 0.25, (0 - 0.75) / 0.125];
    for (let c = 0; c < 3; c++) for (let i = 0; i < 16; i++) expect(px[c * 16 + i]).toBeCloseTo(expected[c], 5);
  });

  it('resizes the whole image (no crop) and keeps batch images apart', async () => {
    const a = await decodeImage(await (await halves(40, 10)).png().toBuffer());
    const b = await decodeImage(await solid(7, 7, '#000000').png().toBuffer());
    const px = await toPixelValues([a, b], cfg);
    expect(px.length).toBe(2 * 3 * 16);
    // Image a: red on the left columns, blue on the right, in every row (whole image kept).
    const red = (x: number, y: number) => px[0 * 16 + y * 4 + x];
    expect(red(0, 0)).toBeGreaterThan(0.9);
    expect(red(3, 3)).toBeLessThan(-0.9);
    // Image b is black: (0 - mean) / std in every channel.
    expect(px[48]).toBeCloseTo(-1, 5);
    expect(px[48 + 16]).toBeCloseTo(-1, 5);
    expect(px[48 + 32]).toBeCloseTo(-6, 5);
  });
});

describe('readPreprocessorConfig', () => {
  it('reads size, mean and std in their Hugging Face forms, with CLIP defaults', () => {
    expect(readPreprocessorConfig({ crop_size: { height: 336, width: 336 }, image_mean: [0.1, 0.2, 0.3], image_std: [1, 2, 3] })).toEqual({
      size: 336,
      mean: [0.1, 0.2, 0.3],
      std: [1, 2, 3],
    });
    expect(readPreprocessorConfig({ size: { shortest_edge: 240 } }).size).toBe(240);
    expect(readPreprocessorConfig({ size: 224 }).size).toBe(224);
    expect(readPreprocessorConfig({}).mean).toEqual([0.48145466, 0.4578275, 0.40821073]);
  });
});
