// Window masks against anomalib's make_masks examples (utils.py docstring, computed by hand
// from nn.functional.unfold) and against the reference's own unfold.
import { describe, expect, it } from 'vitest';
import { makeMasks, windowTokenIndices, type WindowMasks } from '../../../src/methods/winclip/masks.ts';
import { makeMasksReference } from '../../support/reference-winclip.ts';

/** Windows as lists of patch indices. */
const windows = (m: WindowMasks) => Array.from({ length: m.count }, (_, w) => Array.from(m.indices.subarray(w * m.size, (w + 1) * m.size)));
/** anomalib's [k², nMasks] layout (one column per window) from ours. */
const columns = (m: WindowMasks) => Array.from({ length: m.size }, (_, r) => Array.from({ length: m.count }, (_, w) => m.indices[w * m.size + r]));

describe('makeMasks (make_masks)', () => {
  it('3×3 grid, kernel 2: four windows', () => {
    const m = makeMasks(3, 3, 2);
    expect([m.count, m.size]).toEqual([4, 4]);
    expect(columns(m)).toEqual([
      [0, 1, 3, 4],
      [1, 2, 4, 5],
      [3, 4, 6, 7],
      [4, 5, 7, 8],
    ]);
  });

  it('4×4 grid, kernel 2, stride 1: nine windows, row-major by top-left patch', () => {
    const m = makeMasks(4, 4, 2);
    expect(columns(m)).toEqual([
      [0, 1, 2, 4, 5, 6, 8, 9, 10],
      [1, 2, 3, 5, 6, 7, 9, 10, 11],
      [4, 5, 6, 8, 9, 10, 12, 13, 14],
      [5, 6, 7, 9, 10, 11, 13, 14, 15],
    ]);
    expect(windows(m)[3]).toEqual([4, 5, 8, 9]); // top-left at row 1, column 0
  });

  it('4×4 grid, kernel 2, stride 2: four disjoint windows', () => {
    expect(columns(makeMasks(4, 4, 2, 2))).toEqual([
      [0, 2, 8, 10],
      [1, 3, 9, 11],
      [4, 6, 12, 14],
      [5, 7, 13, 15],
    ]);
  });

  it('kernel 3 on a 4×4 grid: patches row-major inside each window', () => {
    expect(windows(makeMasks(4, 4, 3))).toEqual([
      [0, 1, 2, 4, 5, 6, 8, 9, 10],
      [1, 2, 3, 5, 6, 7, 9, 10, 11],
      [4, 5, 6, 8, 9, 10, 12, 13, 14],
      [5, 6, 7, 9, 10, 11, 13, 14, 15],
    ]);
  });

  it('non-square grid (2 rows, 3 columns)', () => {
    expect(windows(makeMasks(2, 3, 2))).toEqual([
      [0, 1, 3, 4],
      [1, 2, 4, 5],
    ]);
  });

  it.each([
    [8, 2],
    [8, 3],
    [15, 2],
    [15, 3],
  ])('grid %i, kernel %i: the same as unfold in the reference, (g-k+1)² windows', (g, k) => {
    const m = makeMasks(g, g, k);
    expect(m.count).toBe((g - k + 1) ** 2);
    expect(columns(m)).toEqual(makeMasksReference(g, g, k));
  });

  it('refuses a kernel larger than the grid, as anomalib does', () => {
    expect(() => makeMasks(2, 5, 3)).toThrow(/grid dimension/);
    expect(() => makeMasks(4, 4, 0)).toThrow(/kernel/);
  });
});

describe('windowTokenIndices', () => {
  it('puts the class token first and shifts patches past it (masks + 1)', () => {
    const t = windowTokenIndices(makeMasks(3, 3, 2));
    expect(Array.from(t)).toEqual([0, 1, 2, 4, 5, 0, 2, 3, 5, 6, 0, 4, 5, 7, 8, 0, 5, 6, 8, 9]);
  });
});
