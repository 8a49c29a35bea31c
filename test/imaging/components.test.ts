import { describe, expect, it } from 'vitest';
import { labelImage, labelRuns } from '../../src/imaging/components.ts';

const labels = (values: number[], w: number, h: number, fg: Parameters<typeof labelRuns>[3] = 'nonzero') =>
  Array.from(labelImage(labelRuns(values, w, h, fg), w, h));

describe('labelRuns', () => {
  it('joins diagonal neighbours (8-connectivity) and numbers components by their first pixel', () => {
    // prettier-ignore
    const grid = [
      0, 0, 0, 1,
      1, 0, 1, 0,
      0, 1, 0, 0,
      0, 0, 0, 1,
    ];
    expect(labels(grid, 4, 4)).toEqual([0, 0, 0, 1, 1, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 2]);
  });

  it('merges the arms of a U found apart, whatever the row order', () => {
    // prettier-ignore
    const u = [
      1, 0, 1, 0, 1,
      1, 0, 1, 0, 1,
      1, 1, 1, 0, 1,
      0, 0, 0, 0, 1,
    ];
    const runs = labelRuns(u, 5, 4, 'nonzero');
    expect(runs.components).toBe(2);
    expect(labels(u, 5, 4)).toEqual([1, 0, 1, 0, 2, 1, 0, 1, 0, 2, 1, 1, 1, 0, 2, 0, 0, 0, 0, 2]);
  });

  it('takes values above a threshold, or every nonzero value; NaN is never foreground', () => {
    const values = [0.2, 0.9, NaN, 0.7, -1, 0];
    expect(labels(values, 6, 1, { above: 0.5 })).toEqual([0, 1, 0, 2, 0, 0]);
    expect(labels(values, 6, 1)).toEqual([1, 1, 0, 2, 2, 0]);
    expect(() => labelRuns(values, 7, 1, 'nonzero')).toThrow(RangeError);
  });
});
