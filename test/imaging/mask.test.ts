// Masks read as 0/1 by nearest-neighbour sampling at pixel centres, thresholded above 127.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { readMaskInto } from '../../src/imaging/mask.ts';

const dir = mkdtempSync(join(tmpdir(), 'mask-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('readMaskInto', () => {
  it('samples the pixel under each output centre and keeps values above 127', async () => {
    // 96 × 64, a square x 30..59, y 20..39 at 255, and a faint band (100) that is not a defect.
    const [W, H] = [96, 64];
    const grey = Buffer.alloc(W * H);
    for (let y = 20; y < 40; y++) grey.fill(255, y * W + 30, y * W + 60);
    grey.fill(100, 60 * W, 62 * W);
    const file = join(dir, 'square.png');
    await sharp(grey, { raw: { width: W, height: H, channels: 1 } }).png().toFile(file);
    const mask = new Uint8Array(16);
    // Samples x 12, 36, 60, 84 and y 8, 24, 40, 56: only (36, 24) is inside.
    expect(await readMaskInto(file, 4, mask)).toEqual({ width: W, height: H });
    expect([...mask]).toEqual([0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    const full = new Uint8Array(64 * 64);
    await readMaskInto(file, 64, full);
    expect(full[25 * 64 + 25]).toBe(1); // samples (38, 25)
    expect(full[5 * 64 + 5]).toBe(0);
    expect(full[60 * 64 + 10]).toBe(0); // the faint band
  });

  it('reads an RGBA mask by its grey level', async () => {
    const rgba = Buffer.alloc(4 * 4 * 4);
    for (let i = 0; i < 16; i++) rgba.set(i < 8 ? [255, 255, 255, 255] : [0, 0, 0, 255], i * 4);
    const file = join(dir, 'rgba.png');
    await sharp(rgba, { raw: { width: 4, height: 4, channels: 4 } }).png().toFile(file);
    const mask = new Uint8Array(4);
    await readMaskInto(file, 2, mask);
    expect([...mask]).toEqual([1, 1, 0, 0]);
  });
});
