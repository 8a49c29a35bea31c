// `npm run eval -- --set quantize=fp32,int8`: one detector per precision, checked by the settings schema.
import { describe, expect, it } from 'vitest';
import { expandGrid, groupByDetector, knownSetKeys, parseSetFlags, SweepError } from '../../src/eval/sweep.ts';

describe('quantize sweep key', () => {
  it('gives fp32 and int8 their own detector', () => {
    expect(knownSetKeys()).toContain('quantize');
    const configs = expandGrid(parseSetFlags(['quantize=fp32,int8', 'temperature=0.05,0.07']));
    const groups = groupByDetector(configs);
    expect(groups.map((g) => g.detector)).toEqual([{ quantize: 'fp32' }, { quantize: 'int8' }]);
    expect(groups.every((g) => g.configurations.length === 2)).toBe(true);
    expect(() => expandGrid(parseSetFlags(['quantize=int4']))).toThrow(SweepError);
  });
});
