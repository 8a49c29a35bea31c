import { describe, expect, it } from 'vitest';
import { defaultBranchSettings, gridBranchMaps, layerBranchMaps, multiLayerBranchMaps, uniformBranchText } from '../../../src/methods/dense-frequency/branches.ts';
import { centredLcg } from '../../support/lcg.ts';

const rnd = centredLcg(8);
const [layers, h, w, dim] = [3, 4, 5, 8];
const n = h * w;
const features = Float32Array.from({ length: layers * n * dim }, rnd);
const text = uniformBranchText({ normal: Float32Array.from({ length: dim }, rnd), abnormal: Float32Array.from({ length: dim }, rnd) });

describe('multiLayerBranchMaps', () => {
  it('averages each branch map over the layers', () => {
    const avg = multiLayerBranchMaps(features, layers, h, w, dim, text);
    const perLayer = Array.from({ length: layers }, (_, l) => layerBranchMaps(features.subarray(l * n * dim), h, w, dim, text));
    for (const branch of ['full', 'high', 'low'] as const) {
      for (let i = 0; i < n; i++) {
        const mean = perLayer.reduce((s, m) => s + m[branch]![i], 0) / layers;
        expect(avg[branch]![i]).toBeCloseTo(mean, 6);
        expect(avg[branch]![i]).toBeGreaterThanOrEqual(0);
        expect(avg[branch]![i]).toBeLessThanOrEqual(1);
      }
    }
  });

  it('scores only the full features when branches are off', () => {
    const maps = multiLayerBranchMaps(features, layers, h, w, dim, text, { ...defaultBranchSettings, branches: false });
    expect(maps.high).toBeUndefined();
    expect(maps.low).toBeUndefined();
    const withBranches = multiLayerBranchMaps(features, layers, h, w, dim, text);
    expect(Array.from(maps.full)).toEqual(Array.from(withBranches.full));
  });

  it('uses a separate text pair per branch', () => {
    const flipped = { normal: text.full.abnormal, abnormal: text.full.normal };
    const maps = multiLayerBranchMaps(features, layers, h, w, dim, { ...text, high: flipped });
    const base = multiLayerBranchMaps(features, layers, h, w, dim, text);
    for (let i = 0; i < n; i++) expect(maps.high![i]).toBeCloseTo(1 - base.high![i], 6);
    expect(Array.from(maps.low!)).toEqual(Array.from(base.low!));
  });

  it('is gridBranchMaps of the grid those fields describe', () => {
    const fromGrid = gridBranchMaps({ data: features, layers, gridH: h, gridW: w, dim }, text);
    const fromFields = multiLayerBranchMaps(features, layers, h, w, dim, text);
    for (const branch of ['full', 'high', 'low'] as const) expect(Array.from(fromGrid[branch]!)).toEqual(Array.from(fromFields[branch]!));
  });

  it('rejects a wrong feature count or text size', () => {
    expect(() => multiLayerBranchMaps(features.subarray(1), layers, h, w, dim, text)).toThrow(RangeError);
    expect(() => multiLayerBranchMaps(features, layers, h, w, dim, uniformBranchText({ normal: new Float32Array(3), abnormal: new Float32Array(3) }))).toThrow(RangeError);
  });
});
