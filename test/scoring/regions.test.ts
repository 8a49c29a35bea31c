import { describe, expect, it } from 'vitest';
import { findRegions } from '../../src/scoring/regions.ts';

function fill(map: Float32Array, width: number, x: number, y: number, w: number, h: number, v: number): void {
  for (let yy = y; yy < y + h; yy++) for (let xx = x; xx < x + w; xx++) map[yy * width + xx] = v;
}

describe('findRegions', () => {
  it('finds two rectangles with the right boxes, sorted by peak', () => {
    const [W, H] = [30, 20];
    const map = new Float32Array(W * H).fill(0.1);
    fill(map, W, 20, 10, 8, 5, 0.7); // larger but weaker
    fill(map, W, 2, 3, 4, 4, 0.8);
    map[4 * W + 3] = 0.95;
    const regions = findRegions(map, W, H, 0.5);
    expect(regions).toHaveLength(2);
    expect(regions[0].bbox).toEqual({ x: 2, y: 3, w: 4, h: 4 });
    expect(regions[0].peak).toBeCloseTo(0.95, 6);
    expect(regions[0].meanScore).toBeCloseTo((15 * 0.8 + 0.95) / 16, 6);
    expect(regions[0].area).toBe(16);
    expect(regions[0].areaFraction).toBeCloseTo(16 / 600, 9);
    expect(regions[1].bbox).toEqual({ x: 20, y: 10, w: 8, h: 5 });
    expect(regions[1].peak).toBeCloseTo(0.7, 6);
  });

  it('joins diagonal neighbours (8-connectivity) and U shapes', () => {
    const [W, H] = [6, 6];
    const map = new Float32Array(W * H);
    map[1 * W + 1] = 1;
    map[2 * W + 2] = 1;
    map[3 * W + 1] = 1; // touches (2,2) diagonally from below-left
    expect(findRegions(map, W, H, 0.5)).toHaveLength(1);
    // A U: two arms that only meet on the last row must merge into one component.
    const u = new Float32Array(W * H);
    fill(u, W, 0, 0, 1, 5, 1);
    fill(u, W, 4, 0, 1, 5, 1);
    fill(u, W, 0, 5, 5, 1, 1);
    const regions = findRegions(u, W, H, 0.5);
    expect(regions).toHaveLength(1);
    expect(regions[0].bbox).toEqual({ x: 0, y: 0, w: 5, h: 6 });
    expect(regions[0].area).toBe(15);
  });

  it('drops small regions and caps the count', () => {
    const [W, H] = [20, 10];
    const map = new Float32Array(W * H);
    map[0] = 0.9; // 1 pixel = 0.5% of the image
    fill(map, W, 5, 5, 3, 3, 0.6);
    fill(map, W, 12, 2, 2, 2, 0.7);
    expect(findRegions(map, W, H, 0.5, { minAreaFraction: 0.01 })).toHaveLength(2);
    const capped = findRegions(map, W, H, 0.5, { maxRegions: 1 });
    expect(capped).toHaveLength(1);
    expect(capped[0].peak).toBeCloseTo(0.9, 6);
    expect(findRegions(map, W, H, 0.95)).toEqual([]);
  });

  it('handles a 4000×3000 map without recursion', () => {
    const [W, H] = [4000, 3000];
    const map = new Float32Array(W * H);
    fill(map, W, 100, 50, 3000, 2900, 0.9); // one huge component
    for (let y = 0; y < H; y += 2) map[y * W + 3999] = 0.8; // many tiny ones
    const t = performance.now();
    const regions = findRegions(map, W, H, 0.5, { maxRegions: 10_000 });
    expect(performance.now() - t).toBeLessThan(5000);
    expect(regions).toHaveLength(1 + H / 2);
    expect(regions[0].area).toBe(3000 * 2900);
  });
});
