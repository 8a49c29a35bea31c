// BMP decoding (bmp.ts through decodeImage, and through HTTP) on files written by a small
// encoder here: 24-bit, 32-bit (plain and with an alpha mask), 8-bit palette, bottom-up and
// top-down; HEIC and other recognised but undecodable formats get 415 naming the format.
import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { decodeImage, sniffImageType } from '../../src/imaging/decode.ts';
import { ImageDecodeError, ImageTooLargeError, UnsupportedMediaTypeError } from '../../src/errors.ts';
import { multipart, startTinyService, type TinyService } from '../support/tiny-service.ts';

interface Bmp {
  width: number;
  height: number;
  /** Top row first, RGB (RGBA for 32-bit with alpha). */
  pixels: (x: number, y: number) => [number, number, number, number];
  bits: 8 | 24 | 32;
  topDown?: boolean;
  alphaMask?: boolean;
}

/** Writes a BMP: BITMAPINFOHEADER (40) or BITMAPV4HEADER (108) for an alpha mask. */
function encodeBmp(spec: Bmp): Buffer {
  const { width: w, height: h, bits } = spec;
  const headerSize = spec.alphaMask ? 108 : 40;
  const palette: number[][] = [];
  const index = new Map<string, number>();
  if (bits === 8) {
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
      const key = spec.pixels(x, y).slice(0, 3).join(',');
      if (!index.has(key)) {
        index.set(key, palette.length);
        palette.push(spec.pixels(x, y).slice(0, 3));
      }
    }
  }
  const rowBytes = Math.ceil((w * bits) / 32) * 4;
  const offset = 14 + headerSize + palette.length * 4;
  const b = Buffer.alloc(offset + rowBytes * h);
  b.write('BM', 0, 'latin1');
  b.writeUInt32LE(b.length, 2);
  b.writeUInt32LE(offset, 10);
  b.writeUInt32LE(headerSize, 14);
  b.writeInt32LE(w, 18);
  b.writeInt32LE(spec.topDown ? -h : h, 22);
  b.writeUInt16LE(1, 26);
  b.writeUInt16LE(bits, 28);
  b.writeUInt32LE(spec.alphaMask ? 3 : 0, 30);
  b.writeUInt32LE(rowBytes * h, 34);
  b.writeUInt32LE(palette.length, 46);
  if (spec.alphaMask) {
    b.writeUInt32LE(0x00ff0000, 54);
    b.writeUInt32LE(0x0000ff00, 58);
    b.writeUInt32LE(0x000000ff, 62);
    b.writeUInt32LE(0xff000000, 66);
  }
  palette.forEach(([r, g, bl], i) => {
    const at = 14 + headerSize + i * 4;
    b[at] = bl;
    b[at + 1] = g;
    b[at + 2] = r;
  });
  for (let y = 0; y < h; y++) {
    const fileRow = spec.topDown ? y : h - 1 - y;
    const rowAt = offset + fileRow * rowBytes;
    for (let x = 0; x < w; x++) {
      const [r, g, bl, a] = spec.pixels(x, y);
      if (bits === 8) b[rowAt + x] = index.get(`${r},${g},${bl}`)!;
      else {
        const at = rowAt + x * (bits / 8);
        b[at] = bl;
        b[at + 1] = g;
        b[at + 2] = r;
        if (bits === 32) b[at + 3] = spec.alphaMask ? a : 0;
      }
    }
  }
  return b;
}

const colour = (x: number, y: number): [number, number, number, number] => [(x * 37 + y * 11) % 256, (x * 5 + y * 71) % 256, (x * y * 3 + 40) % 256, 255];
const few = (x: number, y: number): [number, number, number, number] => [[200, 10, 10], [10, 200, 10], [10, 10, 200], [250, 250, 0]][(x + 2 * y) % 4].concat(255) as [number, number, number, number];

function expected(w: number, h: number, f: Bmp['pixels']): Buffer {
  const out = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) out.set(f(x, y).slice(0, 3), (y * w + x) * 3);
  return out;
}

describe('BMP decoding', () => {
  it.each([
    ['24-bit bottom-up', { bits: 24, width: 13, height: 7, pixels: colour }],
    ['24-bit top-down', { bits: 24, width: 13, height: 7, pixels: colour, topDown: true }],
    ['32-bit bottom-up', { bits: 32, width: 5, height: 9, pixels: colour }],
    ['32-bit top-down', { bits: 32, width: 5, height: 9, pixels: colour, topDown: true }],
    ['8-bit palette bottom-up', { bits: 8, width: 11, height: 6, pixels: few }],
    ['8-bit palette top-down', { bits: 8, width: 11, height: 6, pixels: few, topDown: true }],
  ] as Array<[string, Bmp]>)('decodes a %s file to its pixels', async (_name, spec) => {
    const file = encodeBmp(spec);
    expect(sniffImageType(file)).toBe('bmp');
    const img = await decodeImage(file);
    expect([img.width, img.height, img.format]).toEqual([spec.width, spec.height, 'bmp']);
    expect(img.rgb.equals(expected(spec.width, spec.height, spec.pixels))).toBe(true);
  });

  it('flattens a 32-bit alpha mask onto white', async () => {
    const half = (): [number, number, number, number] => [0, 0, 0, 128];
    const img = await decodeImage(encodeBmp({ bits: 32, width: 2, height: 2, pixels: half, alphaMask: true }));
    expect(Array.from(img.rgb.subarray(0, 3))).toEqual([127, 127, 127]);
  });

  it('applies the size limits from the header, before decoding', async () => {
    const file = encodeBmp({ bits: 24, width: 4, height: 4, pixels: colour });
    file.writeInt32LE(100_000, 18); // header claims 100000×4: pixel data far too short, never read
    await expect(decodeImage(file, { maxSide: 4096 })).rejects.toBeInstanceOf(ImageTooLargeError);
  });

  it('refuses a truncated BMP as damaged (422)', async () => {
    const file = encodeBmp({ bits: 24, width: 30, height: 30, pixels: colour });
    await expect(decodeImage(file.subarray(0, 200))).rejects.toBeInstanceOf(ImageDecodeError);
  });
});

function ftyp(major: string, ...compatible: string[]): Buffer {
  const size = 16 + 4 * compatible.length;
  const b = Buffer.alloc(size + 16);
  b.writeUInt32BE(size, 0);
  b.write('ftyp', 4, 'latin1');
  b.write(major, 8, 'latin1');
  compatible.forEach((c, i) => b.write(c, 16 + 4 * i, 'latin1'));
  return b;
}

describe('recognised but unsupported formats', () => {
  it.each([
    ['HEIC', ftyp('heic', 'mif1', 'heic')],
    ['JPEG XL', Buffer.from([0xff, 0x0a, 1, 2, 3, 4])],
    ['Photoshop (PSD)', Buffer.from('8BPS\x00\x01\x00\x00\x00\x00\x00\x00', 'latin1')],
  ])('answers 415 naming %s', async (name, bytes) => {
    const err = await decodeImage(bytes).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnsupportedMediaTypeError);
    expect((err as { statusCode: number }).statusCode).toBe(415);
    expect((err as Error).message).toBe(`${name} images are not supported: convert to JPEG or PNG`);
  });
});

describe('over HTTP', () => {
  let service: TinyService;
  beforeAll(async () => {
    service = await startTinyService();
  }, 120_000);
  afterAll(() => service?.close());

  const post = (image: Buffer, filename: string) => {
    const form = multipart([{ name: 'image', value: image, filename, type: 'application/octet-stream' }, { name: 'category', value: 'pcb' }, { name: 'map', value: 'none' }]);
    return service.app.inject({ method: 'POST', url: '/v1/detect', headers: form.headers, payload: form.payload });
  };

  it('scores a BMP upload', async () => {
    const res = await post(encodeBmp({ bits: 24, width: 40, height: 30, pixels: colour }), 'frame.bmp');
    expect(res.statusCode, res.body).toBe(200);
    expect(typeof res.json().score).toBe('number');
  });

  it('scores an 8-bit palette top-down BMP upload', async () => {
    const res = await post(encodeBmp({ bits: 8, width: 33, height: 20, pixels: few, topDown: true }), 'frame.bmp');
    expect(res.statusCode, res.body).toBe(200);
  });

  it('answers 415 unsupported_media_type naming HEIC', async () => {
    const res = await post(ftyp('heic', 'mif1', 'heic'), 'photo.heic');
    expect(res.statusCode).toBe(415);
    expect(res.json().error).toBe('unsupported_media_type');
    expect(res.json().message).toMatch(/HEIC images are not supported: convert to JPEG or PNG/);
  });
});
