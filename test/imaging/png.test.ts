// The maps' own PNG encoder (indexed heatmaps), read back by sharp (libvips' PNG decoder, which
// checks the chunk CRCs and the zlib stream's Adler-32), and the heatmap's choice between an
// exact palette and RGB.
import { describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { encodePng } from '../../src/imaging/png.ts';
import { applyColourScale } from '../../src/imaging/colormap.ts';
import { renderHeatmapPng } from '../../src/imaging/heatmap.ts';

async function decode(png: Buffer) {
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
}

/** The PNG colour type from IHDR: 2 RGB, 3 indexed. */
const colourType = (png: Buffer) => png[8 + 8 + 9];

describe('encodePng', () => {
  it('writes an indexed image over several deflate chunks that decodes to its palette colours', async () => {
    // 1500 × 1000 indices: 1.5 MB of scanlines, so more than one sync-flushed chunk.
    const width = 1500;
    const height = 1000;
    const palette = Uint8Array.from({ length: 256 * 3 }, (_, i) => (i * 37) & 0xff);
    const index = (x: number, y: number) => (x * 7 + y * 13 + ((x * y) >> 5)) & 0xff;
    const png = await encodePng({
      width,
      height,
      colour: { type: 'palette', palette },
      rows(y0, y1, out, stride, offset) {
        for (let y = y0; y < y1; y++) for (let x = 0; x < width; x++) out[(y - y0) * stride + offset + x] = index(x, y);
      },
    });
    expect(colourType(png)).toBe(3);
    const out = await decode(png);
    expect([out.width, out.height, out.channels]).toEqual([width, height, 3]);
    for (const [x, y] of [[0, 0], [1499, 0], [0, 999], [777, 555], [1499, 999], [3, 700]]) {
      const k = index(x, y) * 3;
      const o = (y * width + x) * 3;
      expect(Array.from(out.data.subarray(o, o + 3))).toEqual(Array.from(palette.subarray(k, k + 3)));
    }
    let same = true;
    for (let y = 0; y < height && same; y++) {
      for (let x = 0; x < width; x++) {
        const k = index(x, y) * 3;
        const o = (y * width + x) * 3;
        if (out.data[o] !== palette[k] || out.data[o + 1] !== palette[k + 1] || out.data[o + 2] !== palette[k + 2]) same = false;
      }
    }
    expect(same).toBe(true);
  });

  it('refuses an empty or oversized palette and a zero size', async () => {
    const rows = () => {};
    await expect(encodePng({ width: 2, height: 2, colour: { type: 'palette', palette: new Uint8Array(0) }, rows })).rejects.toThrow(RangeError);
    await expect(encodePng({ width: 2, height: 2, colour: { type: 'palette', palette: new Uint8Array(257 * 3) }, rows })).rejects.toThrow(RangeError);
    await expect(encodePng({ width: 0, height: 2, colour: { type: 'rgb' }, rows })).rejects.toThrow(RangeError);
  });
});

describe('heatmap PNG: palette only where it is exact', () => {
  const width = 640;
  const height = 480;
  const smooth = (lo: number, hi: number) => Float32Array.from({ length: width * height }, (_, i) => lo + (hi - lo) * (0.5 + 0.5 * Math.sin((i % width) / 50 + Math.floor(i / width) / 70)));

  it('a quiet map (few colours) is indexed and decodes to exactly the colour scale', async () => {
    const map = smooth(0.1, 0.3);
    const png = await renderHeatmapPng(map, width, height, 0.5);
    expect(colourType(png)).toBe(3);
    expect((await decode(png)).data.equals(applyColourScale(map, width, height, 0.5))).toBe(true);
  });

  it('a map spanning the whole scale (more colours than a palette holds) is RGB, the same pixels', async () => {
    const map = smooth(0, 1);
    const png = await renderHeatmapPng(map, width, height, 0.5);
    expect(colourType(png)).toBe(2);
    expect((await decode(png)).data.equals(applyColourScale(map, width, height, 0.5))).toBe(true);
  });

  it('refuses a map of the wrong length', async () => {
    await expect(renderHeatmapPng(new Float32Array(5), 2, 2, 0.5)).rejects.toThrow(RangeError);
  });
});
