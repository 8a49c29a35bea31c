// The Turbo table's shape, value → colour mapping, and the PNGs decoded back with sharp.
import { describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { applyColormap, TURBO_LUT } from '../../src/imaging/colormap.ts';
import { blendOverlay, renderHeatmapPng, renderOverlayPng } from '../../src/imaging/heatmap.ts';

const lut = (i: number) => Array.from(TURBO_LUT.subarray(i * 3, i * 3 + 3));
// Rec. 709 luma: a rough lightness, enough for the shape checks.
const luma = ([r, g, b]: number[]) => 0.2126 * r + 0.7152 * g + 0.0722 * b;

const isBlueish = ([r, g, b]: number[]) => b > r + 10 && b > g + 10;
const isRedish = ([r, g, b]: number[]) => r > g + 40 && r > b + 40;

async function decodePng(png: Buffer) {
  expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  expect(info.channels).toBe(3);
  const px = (x: number, y: number) => Array.from(data.subarray((y * info.width + x) * 3, (y * info.width + x) * 3 + 3));
  return { data, width: info.width, height: info.height, px };
}

describe('Turbo colour map', () => {
  it('is a 256 × RGB table', () => {
    expect(TURBO_LUT).toBeInstanceOf(Uint8Array);
    expect(TURBO_LUT.length).toBe(256 * 3);
  });

  it('starts dark blue, passes through green, ends dark red', () => {
    const low = lut(0);
    expect(isBlueish(low)).toBe(true);
    expect(luma(low)).toBeLessThan(60);
    const [rm, gm, bm] = lut(128);
    expect(gm).toBeGreaterThan(200);
    expect(gm).toBeGreaterThan(bm);
    expect(gm).toBeGreaterThan(rm);
    const high = lut(255);
    expect(isRedish(high)).toBe(true);
    expect(luma(high)).toBeLessThan(80);
    // Blue dominates the first quarter, red the last.
    for (let i = 0; i < 40; i++) expect(isBlueish(lut(i))).toBe(true);
    for (let i = 200; i < 256; i++) expect(isRedish(lut(i))).toBe(true);
  });

  it('rises in lightness to a peak near the middle, then falls (no sudden jumps)', () => {
    const L = Array.from({ length: 256 }, (_, i) => luma(lut(i)));
    const peak = L.indexOf(Math.max(...L));
    expect(peak).toBeGreaterThan(100);
    expect(peak).toBeLessThan(160);
    expect(L[peak]).toBeGreaterThan(200);
    for (let i = 1; i <= peak; i++) expect(L[i]).toBeGreaterThan(L[i - 1] - 1.5);
    for (let i = peak + 1; i < 256; i++) expect(L[i]).toBeLessThan(L[i - 1] + 1.5);
    for (let i = 1; i < 256; i++) expect(Math.abs(L[i] - L[i - 1])).toBeLessThan(6);
  });
});

describe('applyColormap', () => {
  it('maps [min, max] onto the table, row-major, 3 bytes per value', () => {
    const map = new Float32Array([0, 0.5, 1, 0.25, 0.75, 1 / 255]);
    const rgb = applyColormap(map, 3, 2);
    expect(rgb.length).toBe(6 * 3);
    const at = (i: number) => Array.from(rgb.subarray(i * 3, i * 3 + 3));
    expect([0, 1, 2, 3, 4, 5].map(at)).toEqual([lut(0), lut(128), lut(255), lut(64), lut(191), lut(1)]);
  });

  it('rescales with min and max', () => {
    const rgb = applyColormap(new Float32Array([2, 6, 10]), 3, 1, { min: 2, max: 10 });
    expect(Array.from(rgb)).toEqual([...lut(0), ...lut(128), ...lut(255)]);
  });

  it('clamps values outside [min, max] and maps NaN to the low end', () => {
    const rgb = applyColormap(new Float32Array([-5, 7, NaN, Infinity, -Infinity]), 5, 1);
    expect(Array.from(rgb)).toEqual([...lut(0), ...lut(255), ...lut(0), ...lut(255), ...lut(0)]);
  });

  it('refuses a map whose length is not width × height', () => {
    expect(() => applyColormap(new Float32Array(5), 2, 2)).toThrow(RangeError);
  });
});

describe('heatmap PNGs', () => {
  // Not square, so a swapped width/height would show.
  const width = 30;
  const height = 20;
  const inSquare = (x: number, y: number) => x >= 10 && x < 15 && y >= 5 && y < 10;
  const map = new Float32Array(width * height);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) map[y * width + x] = inSquare(x, y) ? 1 : 0;

  it('renders the map alone at its own size, losslessly', async () => {
    const png = await renderHeatmapPng(map, width, height);
    const out = await decodePng(png);
    expect([out.width, out.height]).toEqual([width, height]);
    expect(out.data.equals(applyColormap(map, width, height))).toBe(true);
  });

  it('colours a hot square red-ish and the rest blue-ish', async () => {
    const out = await decodePng(await renderHeatmapPng(map, width, height));
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        expect(inSquare(x, y) ? isRedish(out.px(x, y)) : isBlueish(out.px(x, y))).toBe(true);
      }
    }
  });

  it('blends the heatmap over the image at the image size', async () => {
    // A gray image with a gradient, so image pixels are told apart.
    const rgb = Buffer.alloc(width * height * 3);
    for (let i = 0; i < width * height; i++) rgb.fill(100 + (i % 50), i * 3, i * 3 + 3);
    const image = { width, height, rgb, format: 'png' };
    const heat = applyColormap(map, width, height);

    const half = await decodePng(await renderOverlayPng(image, map, width, height));
    expect([half.width, half.height]).toEqual([width, height]);
    for (let i = 0; i < half.data.length; i++) expect(half.data[i]).toBe(Math.round(0.5 * heat[i] + 0.5 * rgb[i]));
    // Over gray, the hot square turns red and the rest takes the low end's blue tint.
    const blueTinted = ([r, g, b]: number[]) => b > r && b > g;
    expect(isRedish(half.px(12, 7))).toBe(true);
    expect(blueTinted(half.px(1, 1))).toBe(true);
    expect(blueTinted(half.px(29, 19))).toBe(true);

    const none = await decodePng(await renderOverlayPng(image, map, width, height, 0));
    expect(none.data.equals(rgb)).toBe(true);
    const full = await decodePng(await renderOverlayPng(image, map, width, height, 1));
    expect(full.data.equals(heat)).toBe(true);
  });

  it('refuses a map of another size than the image, and an alpha outside [0, 1]', async () => {
    const image = { width, height, rgb: Buffer.alloc(width * height * 3, 200), format: 'raw' };
    await expect(renderOverlayPng(image, new Float32Array(100), 10, 10)).rejects.toThrow(/map is 10×10 but the image is 30×20/);
    await expect(renderOverlayPng(image, map, width, height, 1.5)).rejects.toThrow(RangeError);
    await expect(renderOverlayPng(image, map, width, height, Number.NaN)).rejects.toThrow(RangeError);
  });
});

describe('blendOverlay', () => {
  it('at one half is the rounded mean of every byte pair, as the webhook overlay always was', () => {
    const heat = new Uint8Array(256 * 256);
    const image = new Uint8Array(256 * 256);
    for (let h = 0; h < 256; h++) for (let r = 0; r < 256; r++) [heat[h * 256 + r], image[h * 256 + r]] = [h, r];
    const out = blendOverlay(heat, image, 0.5);
    for (let i = 0; i < out.length; i++) expect(out[i]).toBe((heat[i] + image[i] + 1) >> 1);
    expect(() => blendOverlay(heat, image.subarray(1))).toThrow(RangeError);
  });
});
