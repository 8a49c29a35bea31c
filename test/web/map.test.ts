// The page's map maths (web/src/map) against the server's: the same bilinear upsampling and the
// same 8-connected regions, a colour scale fixed by the threshold, and closed contours.
import { describe, expect, it } from 'vitest';
import { upsampleBilinear as serverUpsample } from '../../src/imaging/resample-maps.ts';
import { findRegions as serverRegions } from '../../src/scoring/regions.ts';
import { upsampleBilinear, workingSize } from '../../web/src/map/upsample.ts';
import { findRegions } from '../../web/src/map/regions.ts';
import { contourSegments } from '../../web/src/map/contour.ts';
import { BOUNDARY, HOT, NORMAL, colourAt, paintMap } from '../../web/src/map/colour-scale.ts';
import { lcg } from '../support/lcg.ts';

const randomGrid = (n: number, seed: number) => {
  const next = lcg(seed);
  return Float32Array.from({ length: n }, () => next());
};

describe('upsampling the grid', () => {
  it('is the server’s bilinear resize (align_corners=false)', () => {
    const grid = randomGrid(8 * 6, 3);
    const mine = upsampleBilinear(grid, 8, 6, 97, 53);
    const theirs = serverUpsample(grid, 6, 8, 97, 53);
    expect(mine.values.length).toBe(97 * 53);
    for (let i = 0; i < theirs.length; i++) expect(mine.values[i]).toBeCloseTo(theirs[i], 5);
  });

  it('works at most at 1024 px on the longest side, keeping the aspect ratio', () => {
    expect(workingSize(96, 64)).toEqual({ width: 96, height: 64 });
    expect(workingSize(4000, 3000)).toEqual({ width: 1024, height: 768 });
  });
});

describe('regions', () => {
  it('are the server’s 8-connected components above the threshold', () => {
    const map = upsampleBilinear(randomGrid(64, 11), 8, 8, 120, 80).values;
    for (const t of [0.3, 0.5, 0.7, 0.9]) {
      const mine = findRegions(map, 120, 80, t);
      const theirs = serverRegions(map, 120, 80, t, { maxRegions: 1000 });
      expect(mine.length).toBe(theirs.length);
      expect(mine.map((r) => r.bbox)).toEqual(theirs.map((r) => r.bbox));
      mine.forEach((r, i) => expect(r.peak).toBeCloseTo(theirs[i].peak, 6));
    }
  });

  it('join diagonal neighbours and scale boxes to the image', () => {
    const map = new Float32Array([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1]); // 4 × 3: a diagonal pair and a lone pixel
    const regions = findRegions(map, 4, 3, 0.5, 40, 30);
    expect(regions).toHaveLength(2);
    expect(regions.map((r) => r.bbox)).toEqual([
      { x: 0, y: 0, w: 20, h: 20 },
      { x: 30, y: 20, w: 10, h: 10 },
    ]);
    expect(findRegions(map, 4, 3, 1)).toHaveLength(0); // strictly above, like the server
  });
});

describe('colour scale', () => {
  it('ties colours to the threshold, never to the map’s own range', () => {
    expect(colourAt(0, 0.5)).toEqual(NORMAL);
    expect(colourAt(0.5, 0.5)).toEqual(BOUNDARY);
    expect(colourAt(1, 0.5)).toEqual(HOT);
    expect(colourAt(0.3, 0.3)).toEqual(BOUNDARY);
    const low = paintMap(new Float32Array([0.1, 0.2]), 0.5);
    const wide = paintMap(new Float32Array([0.1, 0.9]), 0.5);
    expect([...low.slice(0, 4)]).toEqual([...wide.slice(0, 4)]);
    // Above the threshold is warmer (more red, less blue) than below it.
    const [below, above] = [colourAt(0.4, 0.5), colourAt(0.7, 0.5)];
    expect(above[0]).toBeGreaterThan(below[0]);
    expect(above[2]).toBeLessThan(below[2]);
  });
});

describe('threshold contour', () => {
  const closed = (segs: Float32Array) => {
    const ends = new Map<string, number>();
    for (let i = 0; i < segs.length; i += 2) {
      const k = `${segs[i].toFixed(4)},${segs[i + 1].toFixed(4)}`;
      ends.set(k, (ends.get(k) ?? 0) + 1);
    }
    return [...ends.values()].every((n) => n % 2 === 0);
  };

  it('draws closed outlines, also around regions at the border', () => {
    const inner = new Float32Array(25);
    inner[12] = 1;
    const a = contourSegments(inner, 5, 5, 0.5);
    expect(a.length / 4).toBe(4);
    expect(closed(a)).toBe(true);
    const corner = new Float32Array(25);
    corner[0] = corner[1] = corner[5] = 1;
    const b = contourSegments(corner, 5, 5, 0.5);
    expect(closed(b)).toBe(true);
    expect(Math.min(...b)).toBe(0); // along the map's edge
    expect(contourSegments(new Float32Array(25), 5, 5, 0.5)).toHaveLength(0);
  });

  it('follows the interpolated crossing between samples', () => {
    const map = new Float32Array([0, 1]); // 2 × 1: crosses 0.25 a quarter of the way
    const segs = contourSegments(map, 2, 1, 0.25);
    expect(segs).toContain(0.75);
  });
});
