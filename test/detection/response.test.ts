// The answer a client acts on (response.ts): the verdict, the level regions are found at, and
// no verdict at all from a score that is not a number.
import { describe, expect, it } from 'vitest';
import { buildResponse } from '../../src/detection/response.ts';
import { InternalError } from '../../src/errors.ts';
import type { MethodOutcome } from '../../src/methods/contract.ts';

const outcome = (score: number): MethodOutcome => ({
  score,
  pImage: score,
  map: new Float32Array(4),
  grid: { fused: new Float32Array(4) },
  regions: [],
  encodeMs: 1,
  scoreMs: 1,
});

type Parts = Parameters<typeof buildResponse>[0];
const parts = (score: number, extra: Partial<Parts> = {}): Parts => ({
  category: 'nut',
  method: 'dense-frequency',
  threshold: 0.5,
  image: { width: 2, height: 2, rgb: Buffer.alloc(12), format: 'png' },
  outcome: outcome(score),
  map: null,
  model: { id: 'm', generated: false },
  timingsMs: { decode: 1, encode: 1, score: 1, render: 1, total: 4 },
  ...extra,
});

describe('buildResponse', () => {
  it('isAnomalous is score ≥ threshold; regions are found at the threshold unless a calibrated pixel threshold is given', () => {
    expect(buildResponse(parts(0.5))).toMatchObject({ isAnomalous: true, threshold: 0.5, regionThreshold: 0.5 });
    expect(buildResponse(parts(0.49, { regionThreshold: 0.62 }))).toMatchObject({ isAnomalous: false, regionThreshold: 0.62 });
  });

  it('a calibration not used is said in the answer and in the summary', () => {
    const r = buildResponse(parts(0.3, { thresholdSource: 'default', calibrationNotUsed: { reason: 'made with 7 references, the category now has 8', summary: "the category's calibration is out of date" } }));
    expect(r.calibrationNotUsed).toBe('made with 7 references, the category now has 8');
    expect(r.summary).toBe("nut: looks normal (score 0.30 < threshold 0.50, default: the category's calibration is out of date).");
  });

  it.each([NaN, Infinity, -Infinity])('a score of %s gives no verdict (a 500), never "looks normal"', (score) => {
    expect(() => buildResponse(parts(score))).toThrow(InternalError);
    expect(() => buildResponse(parts(score))).toThrow(/non-finite score/);
  });
});
