import { describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { applyColormap, TURBO_LUT } from '../../src/render/colormap.ts';
import { renderHeatmapPng, renderOverlayPng } from '../../src/render/heatmap.ts';

describe('turbo colour map', () => {
  it('runs from blue through green to dark red', () => {
    const at = (i: number) => Array.from(TURBO_LUT.subarray(i * 3, i * 3 + 3));
    const [r0, g0, b0] = at(26);
    expect(b0).toBeGreaterThan(r0);
    expect(b0).toBeGreaterThan(g0);
    const [rm, gm] = at(128);
    expect(gm).toBeGreaterThan(150);
    expect(gm).toBeGreaterThan(rm - 60);
    const [r1, g1, b1] = at(255);
    expect(r1).toBeGreaterThan(g1);
    expect(r1).toBeGreaterThan(b1);
  });

  it('clamps values outside [min, max] and maps NaN to the low end', () => {
    const rgb = applyColormap(new Float32Array([-5, 0, 1, 7, NaN]), 5, 1);
    expect([...rgb.subarray(0, 3)]).toEqual([...rgb.subarray(3, 6)]);
    expect([...rgb.subarray(6, 9)]).toEqual([...rgb.subarray(9, 12)]);
    expect([...rgb.subarray(12, 15)]).toEqual([...rgb.subarray(0, 3)]);
  });
});

describe('heatmap PNGs', () => {
  const width = 30;
  const height = 20;
  const map = new Float32Array(width * height).fill(0.1);
  for (let y = 5; y < 10; y++) for (let x = 10; x < 15; x++) map[y * width + x] = 1;

  it('renders the map at its own size, hot square red-ish, the rest blue-ish', async () => {
    const png = await renderHeatmapPng(map, width, height);
    const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height]).toEqual([width, height]);
    const px = (x: number, y: number) => Array.from(data.subarray((y * width + x) * info.channels, (y * width + x) * info.channels + 3));
    const [hr, , hb] = px(12, 7);
    expect(hr).toBeGreaterThan(hb);
    const [cr, , cb] = px(1, 1);
    expect(cb).toBeGreaterThan(cr);
  });

  it('blends over the image at the image size, and refuses a map of another size', async () => {
    const image = { width, height, rgb: Buffer.alloc(width * height * 3, 200), format: 'raw' };
    const png = await renderOverlayPng(image, map, width, height, 0.5);
    const meta = await sharp(png).metadata();
    expect([meta.width, meta.height]).toEqual([width, height]);
    await expect(renderOverlayPng(image, map, 10, 10)).rejects.toThrow(/map is 10×10/);
  });
});
