// Image bytes for HTTP tests: real encodes from sharp and hand-made headers that lie.
import sharp from 'sharp';
import { crc32, deflateSync } from 'node:zlib';

/** A 96×64 grey PNG with a red square: a real, small, valid upload. */
export function partPng(): Promise<Buffer> {
  return sharp({ create: { width: 96, height: 64, channels: 3, background: '#6d6d6d' } })
    .composite([{ input: { create: { width: 10, height: 10, channels: 3, background: '#ff0000' } }, left: 40, top: 20 }])
    .png()
    .toBuffer();
}

function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const sum = Buffer.alloc(4);
  sum.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, sum]);
}

/** A PNG whose header claims the given size, with valid CRCs and a tiny IDAT: a decompression bomb's shape. */
export function pngClaiming(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(Buffer.alloc(64))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** Inserts a tEXt chunk after IHDR: bytes that must never show up in a log. */
export function withTextChunk(png: Buffer, text: string): Buffer {
  const afterIhdr = 8 + 8 + 13 + 4;
  return Buffer.concat([png.subarray(0, afterIhdr), chunk('tEXt', Buffer.from(`Comment\0${text}`, 'latin1')), png.subarray(afterIhdr)]);
}

/** Bytes that are no image format: a fixed pseudo-random sequence. */
export function randomBytes(length = 3000): Buffer {
  return Buffer.from(Array.from({ length }, (_, i) => (i * 7919 + 13) % 251));
}
