import { describe, expect, it } from 'vitest';
import { augmentViews, viewCount } from '../../src/imaging/augment.ts';
import type { DecodedImage } from '../../src/imaging/decode.ts';

/** 3×2 image whose pixel (x, y) has red = 10·y + x: every symmetry moves it somewhere else. */
const image: DecodedImage = { width: 3, height: 2, format: 'raw', rgb: Buffer.from([0, 1, 2, 10, 11, 12].flatMap((v) => [v, 0, 0])) };
const reds = (v: DecodedImage) => Array.from({ length: v.width * v.height }, (_, i) => v.rgb[i * 3]);

describe('augmentViews', () => {
  it('none is the image itself; flips give 4 and rotations 8 distinct views', () => {
    expect(augmentViews(image, 'none')).toEqual([image]);
    const flips = augmentViews(image, 'flips');
    expect(flips.map(reds)).toEqual([
      [0, 1, 2, 10, 11, 12],
      [2, 1, 0, 12, 11, 10],
      [10, 11, 12, 0, 1, 2],
      [12, 11, 10, 2, 1, 0],
    ]);
    const all = augmentViews(image, 'rotations');
    expect(all).toHaveLength(viewCount('rotations'));
    expect(new Set(all.map((v) => reds(v).join(','))).size).toBe(8);
    // Transposed views are 2×3, and the plain transpose puts (x, y) at (y, x).
    expect(all[4]).toMatchObject({ width: 2, height: 3 });
    expect(reds(all[4])).toEqual([0, 10, 1, 11, 2, 12]);
    // Every view holds the same pixels.
    for (const v of all) expect([...reds(v)].sort((a, b) => a - b)).toEqual([0, 1, 2, 10, 11, 12]);
  });
});
