// Harmonic aggregation on small grids computed by hand (anomalib's utils.py docstring example
// among them), cross-scale harmonic mean and the few-shot arithmetic mean.
import { describe, expect, it } from 'vitest';
import { harmonicAggregation, harmonicMeanOfMaps, meanOfMaps } from '../../../src/methods/winclip/aggregation.ts';
import { makeMasks } from '../../../src/methods/winclip/masks.ts';
import { harmonicAggregationReference, makeMasksReference } from '../../support/reference-winclip.ts';

function expectClose(actual: ArrayLike<number>, expected: number[], tol = 1e-12): void {
  expect(actual.length).toBe(expected.length);
  expected.forEach((v, i) => expect(Math.abs(actual[i] - v)).toBeLessThanOrEqual(tol));
}

describe('harmonicAggregation (harmonic_aggregation)', () => {
  it("3×3 grid, four 2×2 windows scored 1, 0.75, 0.5, 0.25 (anomalib's example)", () => {
    // Corner patches see one window; edge patches two; the centre all four:
    //   patch 1: 2 / (1/1 + 1/0.75) = 6/7;   patch 3: 2 / (1/1 + 1/0.5) = 2/3
    //   patch 4: 4 / (1 + 4/3 + 2 + 4) = 12/25;  patch 5: 2 / (4/3 + 4) = 3/8
    //   patch 7: 2 / (2 + 4) = 1/3
    const out = harmonicAggregation([1, 0.75, 0.5, 0.25], makeMasks(3, 3, 2));
    expectClose(out, [1, 6 / 7, 0.75, 2 / 3, 12 / 25, 3 / 8, 0.5, 1 / 3, 0.25]);
  });

  it('3×4 grid, 3×3 windows: two windows, the middle columns see both', () => {
    const out = harmonicAggregation([0.2, 0.8], makeMasks(3, 4, 3));
    const both = 2 / (5 + 1.25); // 0.32
    expectClose(out, [0.2, both, both, 0.8, 0.2, both, both, 0.8, 0.2, both, both, 0.8]);
  });

  it('a window scored 0 makes every patch it covers 0 (1/0 = inf, nan_to_num(posinf=0))', () => {
    const out = harmonicAggregation([0, 0.5, 0.5, 0.5], makeMasks(3, 3, 2));
    expectClose(out, [0, 0, 0.5, 0, 0, 0.5, 0.5, 0.5, 0.5]);
  });

  it('patches no window covers (stride 2) get 0, as 0/0 = NaN → 0 in anomalib', () => {
    const out = harmonicAggregation([0.4], makeMasks(3, 3, 2, 2));
    expectClose(out, [0.4, 0.4, 0, 0.4, 0.4, 0, 0, 0, 0]);
  });

  it('equals the per-patch loop of the reference on an 8×8 grid', () => {
    for (const k of [2, 3]) {
      const masks = makeMasks(8, 8, k);
      const scores = Array.from({ length: masks.count }, (_, i) => 0.05 + ((i * 37) % 90) / 100);
      expectClose(harmonicAggregation(scores, masks), harmonicAggregationReference(scores, 8, 8, makeMasksReference(8, 8, k)), 1e-15);
    }
  });

  it('checks the number of scores', () => {
    expect(() => harmonicAggregation([1, 2], makeMasks(3, 3, 2))).toThrow(/2 scores for 4 windows/);
  });
});

describe('across scales', () => {
  it('harmonic mean: (scales + 1) / Σ 1/s; a zero anywhere gives zero', () => {
    expectClose(harmonicMeanOfMaps([[0.5, 1, 0.2], [0.25, 1, 0], [1, 1, 0.5]]), [3 / 7, 1, 0]);
  });

  it('few-shot mean is arithmetic', () => {
    expectClose(meanOfMaps([[0.5, 1], [0.25, 0], [0, 0.5]]), [0.25, 0.5]);
  });
});
