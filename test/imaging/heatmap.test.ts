// The fixed colour scale (tied to the threshold, never to the image's min–max), the heatmap
// and overlay PNGs decoded back with sharp, and the overlay's marks: contour, boxes, legend.
import { describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { applyColourScale, BOUNDARY_COLOUR, HOT_COLOUR, NORMAL_COLOUR, scaleColour } from '../../src/imaging/colormap.ts';
import { blendOverlay, blendScaled, renderHeatmapPng, renderOverlayPng } from '../../src/imaging/heatmap.ts';
import { CONTOUR_COLOUR, REGION_COLOUR } from '../../src/imaging/overlay-marks.ts';
import { fontsAvailable, legendLayout } from '../../src/imaging/legend.ts';

const isBlueish = ([r, g, b]: number[]) => b > r + 10 && b > g + 10;
const isRedish = ([r, g, b]: number[]) => r > g + 40 && r > b + 40;
const colours = (rgb: Uint8Array) => Array.from({ length: rgb.length / 3 }, (_, i) => Array.from(rgb.subarray(i * 3, i * 3 + 3)));

async function decodePng(png: Buffer) {
  expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  expect(info.channels).toBe(3);
  const px = (x: number, y: number) => Array.from(data.subarray((y * info.width + x) * 3, (y * info.width + x) * 3 + 3));
  return { data, width: info.width, height: info.height, px };
}

describe('the fixed colour scale', () => {
  it('0 is the normal colour, the threshold the boundary colour, 1 the hot end, for any threshold', () => {
    for (const t of [0.2, 0.5, 0.73, 0.9]) {
      expect(scaleColour(0, t).rgb).toEqual(NORMAL_COLOUR);
      expect(scaleColour(t, t).rgb).toEqual(BOUNDARY_COLOUR);
      expect(scaleColour(1, t).rgb).toEqual(HOT_COLOUR);
    }
    expect(isBlueish([...NORMAL_COLOUR])).toBe(true);
    expect(isRedish([...HOT_COLOUR])).toBe(true);
  });

  it('normal values blend faintly and hot ones strongly over the image', () => {
    expect(scaleColour(0, 0.5).alpha).toBeLessThan(0.3);
    expect(scaleColour(1, 0.5).alpha).toBeGreaterThan(scaleColour(0.5, 0.5).alpha);
  });

  it('a map of all zeros renders entirely in the normal colour', () => {
    const rgb = applyColourScale(new Float32Array(40 * 30), 40, 30, 0.5);
    expect(colours(rgb).every((c) => c.join() === NORMAL_COLOUR.join())).toBe(true);
  });

  it('a value at the threshold gets the boundary colour, for thresholds between table entries', () => {
    for (const t of [0.5, 0.3141, 0.77777]) {
      const rgb = applyColourScale(new Float32Array([t]), 1, 1, t);
      expect(Array.from(rgb)).toEqual([...BOUNDARY_COLOUR]);
    }
  });

  it('gives the same colours to the same values on maps with different min and max (no per-image normalisation)', () => {
    const shared = [0.1, 0.3, 0.5, 0.6];
    const low = new Float32Array([...shared, 0.12, 0.2]); // max 0.6
    const wide = new Float32Array([...shared, 0, 1]); // 0 to 1
    const a = colours(applyColourScale(low, 6, 1, 0.5)).slice(0, 4);
    const b = colours(applyColourScale(wide, 6, 1, 0.5)).slice(0, 4);
    expect(a).toEqual(b);
    // A map whose max is only 0.3 stays below the boundary: nothing is stretched up to hot.
    const quiet = colours(applyColourScale(new Float32Array([0, 0.15, 0.3]), 3, 1, 0.5));
    expect(quiet.every((c) => isBlueish(c) || c[1] > c[0])).toBe(true);
    expect(quiet.some((c) => c.join() === HOT_COLOUR.join() || c.join() === BOUNDARY_COLOUR.join())).toBe(false);
  });

  it('clamps values outside 0–1 and maps NaN to the normal colour', () => {
    const rgb = colours(applyColourScale(new Float32Array([-5, 7, NaN, Infinity, -Infinity]), 5, 1, 0.5));
    expect(rgb.map((c) => c.join())).toEqual([NORMAL_COLOUR, HOT_COLOUR, NORMAL_COLOUR, HOT_COLOUR, NORMAL_COLOUR].map((c) => c.join()));
  });

  it('refuses a map whose length is not width × height', () => {
    expect(() => applyColourScale(new Float32Array(5), 2, 2, 0.5)).toThrow(RangeError);
  });
});

describe('heatmap PNG', () => {
  // Not square, so a swapped width/height would show.
  const width = 30;
  const height = 20;
  const inSquare = (x: number, y: number) => x >= 10 && x < 15 && y >= 5 && y < 10;
  const map = new Float32Array(width * height);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) map[y * width + x] = inSquare(x, y) ? 1 : 0;

  it('renders the map alone at its own size, losslessly, hot square red and the rest blue', async () => {
    const out = await decodePng(await renderHeatmapPng(map, width, height, 0.5));
    expect([out.width, out.height]).toEqual([width, height]);
    expect(out.data.equals(applyColourScale(map, width, height, 0.5))).toBe(true);
    for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) expect(inSquare(x, y) ? isRedish(out.px(x, y)) : isBlueish(out.px(x, y))).toBe(true);
  });
});

describe('overlay PNG', () => {
  const width = 200;
  const height = 120;
  const gray = () => {
    const rgb = Buffer.alloc(width * height * 3);
    for (let i = 0; i < width * height; i++) rgb.fill(100 + (i % 50), i * 3, i * 3 + 3);
    return { width, height, rgb, format: 'png' };
  };
  // A hot square at x 40–59, y 20–39; its region box is that square.
  const inSquare = (x: number, y: number) => x >= 40 && x < 60 && y >= 20 && y < 40;
  const map = new Float32Array(width * height);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) map[y * width + x] = inSquare(x, y) ? 0.9 : 0;
  const box = { x: 40, y: 20, w: 20, h: 20 };

  it('blends each value by its scale weight: a zero map tints the image faintly with the normal colour', () => {
    const image = gray();
    const out = blendScaled(image, new Float32Array(width * height), 0.5);
    const a = Math.round(scaleColour(0, 0.5).alpha * 256);
    for (let i = 0; i < 300; i++) expect(out[i]).toBe((NORMAL_COLOUR[i % 3] * a + image.rgb[i] * (256 - a) + 128) >> 8);
  });

  it('has the image size, box pixels on the region bbox outline (2 px), the contour, and the legend', async () => {
    const out = await decodePng(await renderOverlayPng(gray(), map, { threshold: 0.5, regions: [box] }));
    expect([out.width, out.height]).toEqual([width, height]);
    const is = (c: readonly number[]) => (p: number[]) => p.join() === c.join();
    // The outline: the two outer rows and columns of the box.
    for (let x = 40; x < 60; x++) for (const y of [20, 21, 38, 39]) expect(is(REGION_COLOUR)(out.px(x, y))).toBe(true);
    for (let y = 20; y < 40; y++) for (const x of [40, 41, 58, 59]) expect(is(REGION_COLOUR)(out.px(x, y))).toBe(true);
    // Inside the outline the hot map shows; just outside, the image with the normal tint.
    expect(isRedish(out.px(50, 30))).toBe(true);
    expect(is(REGION_COLOUR)(out.px(42, 30))).toBe(false);
    expect(is(REGION_COLOUR)(out.px(39, 30))).toBe(false);
    expect(is(REGION_COLOUR)(out.px(50, 19))).toBe(false);

    // The legend: a bar from the normal colour to the hot end, a white tick at the threshold.
    const layout = legendLayout(width, height, 0.5)!;
    expect(layout.panel.x + layout.panel.w).toBeLessThanOrEqual(width);
    expect(layout.panel.y + layout.panel.h).toBeLessThanOrEqual(height);
    const midY = layout.bar.y + Math.floor(layout.bar.h / 2);
    expect(is(NORMAL_COLOUR)(out.px(layout.bar.x, midY))).toBe(true);
    expect(is(HOT_COLOUR)(out.px(layout.bar.x + layout.bar.w - 1, midY))).toBe(true);
    expect(is([255, 255, 255])(out.px(layout.ticks[1], midY))).toBe(true);
    for (const x of layout.ticks) expect(is([255, 255, 255])(out.px(x, layout.tickTop + 1))).toBe(true);
  });

  it('draws the 1 px threshold contour where the map crosses it, none without a crossing', async () => {
    const out = await decodePng(await renderOverlayPng(gray(), map, { threshold: 0.5, legend: false }));
    const white = (x: number, y: number) => out.px(x, y).join() === CONTOUR_COLOUR.join();
    for (let x = 40; x < 60; x++) expect(white(x, 20) && white(x, 39)).toBe(true);
    for (let y = 20; y < 40; y++) expect(white(40, y) && white(59, y)).toBe(true);
    expect(white(41, 30) || white(39, 30) || white(50, 30)).toBe(false);
    const flat = await decodePng(await renderOverlayPng(gray(), new Float32Array(width * height), { threshold: 0.5, legend: false }));
    expect(flat.data.equals(blendScaled(gray(), new Float32Array(width * height), 0.5))).toBe(true);
  });

  it('keeps a box reaching past the image inside it', async () => {
    const out = await decodePng(await renderOverlayPng(gray(), map, { threshold: 0.5, regions: [{ x: 190, y: -5, w: 30, h: 20 }], legend: false }));
    const cyan = (x: number, y: number) => out.px(x, y).join() === REGION_COLOUR.join();
    expect(cyan(195, 0) && cyan(195, 1) && cyan(199, 5) && cyan(198, 5) && cyan(190, 5) && cyan(195, 14)).toBe(true);
    expect(cyan(195, 5)).toBe(false);
  });

  it('writes the tick values as text when a font is there (else bar and ticks only)', async () => {
    const layout = legendLayout(width, height, 0.5)!;
    const out = await decodePng(await renderOverlayPng(gray(), map, { threshold: 0.5 }));
    const textRow = layout.text!.baseline - 2;
    let bright = 0;
    for (let x = layout.panel.x; x < layout.panel.x + layout.panel.w; x++) if (Math.min(...out.px(x, textRow)) > 180) bright++;
    if (await fontsAvailable()) expect(bright).toBeGreaterThan(0);
    else expect(bright).toBe(0);
  });

  it('leaves the legend out of an image too small for it', () => {
    expect(legendLayout(40, 30, 0.5)).toBeUndefined();
    expect(legendLayout(96, 64, 0.5)?.text).toBeUndefined();
  });

  it('refuses a map of another size than the image', async () => {
    await expect(renderOverlayPng(gray(), new Float32Array(100), { threshold: 0.5 })).rejects.toThrow(/map has 100 values but the image is 200×120/);
  });
});

describe('blendOverlay (the webhook event over a heatmap PNG)', () => {
  it('at one half is the rounded mean of every byte pair', () => {
    const heat = new Uint8Array(256 * 256);
    const image = new Uint8Array(256 * 256);
    for (let h = 0; h < 256; h++) for (let r = 0; r < 256; r++) [heat[h * 256 + r], image[h * 256 + r]] = [h, r];
    const out = blendOverlay(heat, image, 0.5);
    for (let i = 0; i < out.length; i++) expect(out[i]).toBe((heat[i] + image[i] + 1) >> 1);
    expect(() => blendOverlay(heat, image.subarray(1))).toThrow(RangeError);
  });
});
