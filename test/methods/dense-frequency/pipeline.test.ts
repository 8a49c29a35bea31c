import { describe, expect, it } from 'vitest';
import { uniformBranchText } from '../../../src/methods/dense-frequency/branches.ts';
import { defaultScoringSettings, outputSigma, resolveScoringSettings, scoreImage, type ScoreImageInput } from '../../../src/methods/dense-frequency/pipeline.ts';
import { centredLcg } from '../../support/lcg.ts';

function unit(dim: number, rnd: () => number): Float32Array {
  const v = Float32Array.from({ length: dim }, rnd);
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
}

function input(overrides: Partial<ScoreImageInput> = {}): ScoreImageInput {
  const rnd = centredLcg(21);
  const [layers, gridH, gridW, dim] = [2, 5, 4, 16];
  return {
    imageEmbed: Float32Array.from({ length: dim }, rnd),
    dense: Float32Array.from({ length: layers * gridH * gridW * dim }, rnd),
    layers,
    gridH,
    gridW,
    dim,
    text: uniformBranchText({ normal: unit(dim, rnd), abnormal: unit(dim, rnd) }),
    width: 37,
    height: 23,
    inputSize: 64,
    settings: defaultScoringSettings,
    ...overrides,
  };
}

describe('scoreImage', () => {
  it('returns a map of exactly width × height and a score in [0, 1]', () => {
    const result = scoreImage(input());
    expect(result.map.length).toBe(37 * 23);
    expect(result.score).toBeGreaterThanOrEqual(0);
    expect(result.score).toBeLessThanOrEqual(1);
    expect(result.pImage).toBeGreaterThan(0);
    for (const m of [result.grid.full, result.grid.high!, result.grid.low!, result.grid.fused]) expect(m.length).toBe(20);
    for (const v of result.map) {
      expect(v).toBeGreaterThanOrEqual(0);
      expect(v).toBeLessThanOrEqual(1);
    }
    expect(Object.keys(result.branchImageScores!)).toEqual(['full', 'high', 'low']);
  });

  it('fuses with weights (1, 0, 0) or without branches into the plain full map', () => {
    const plain = scoreImage(input({ settings: { ...defaultScoringSettings, fusion: { full: 1, high: 0, low: 0 } } }));
    expect(Array.from(plain.grid.fused)).toEqual(Array.from(plain.grid.full));
    const off = scoreImage(input({ settings: { ...defaultScoringSettings, branches: false } }));
    expect(off.grid.high).toBeUndefined();
    expect(off.branchImageScores).toBeUndefined();
    expect(Array.from(off.grid.fused)).toEqual(Array.from(plain.grid.full));
    expect(off.score).toBe(plain.score);
    expect(Array.from(off.map)).toEqual(Array.from(plain.map));
  });

  it('rejects inconsistent shapes', () => {
    expect(() => scoreImage(input({ dim: 15 }))).toThrow(RangeError);
    expect(() => scoreImage(input({ layers: 3 }))).toThrow(RangeError);
    expect(() => scoreImage(input({ width: 0 }))).toThrow(RangeError);
  });
});

describe('settings', () => {
  it('scales sigma from the model input to the output size', () => {
    expect(outputSigma(4, 1036, 500, 518)).toBe(8);
  });

  it('merges overrides with the defaults and checks ranges', () => {
    const s = resolveScoringSettings({ fsam: { beta: 2 }, imageScore: { alpha: 0.2 } });
    expect(s.fsam).toEqual({ ...defaultScoringSettings.fsam, beta: 2 });
    expect(s.imageScore.topKPercent).toBe(defaultScoringSettings.imageScore.topKPercent);
    expect(resolveScoringSettings()).toEqual(defaultScoringSettings);
    expect(() => resolveScoringSettings({ temperature: 0 })).toThrow(RangeError);
    expect(() => resolveScoringSettings({ fsam: { k: 4 } })).toThrow(RangeError);
    expect(() => resolveScoringSettings({ fusion: { full: 0, high: 0, low: 0 } })).toThrow(RangeError);
    expect(() => resolveScoringSettings({ gscm: { keyPool: 0 } })).toThrow(RangeError);
  });
});
