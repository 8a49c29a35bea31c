// The evaluation tool's `--set method=…` key: it travels inside the configuration's scoring
// settings, which the evaluation hands to ClipDetector.scoreDecoded unchanged.
import { describe, expect, it } from 'vitest';
import { buildConfiguration, expandGrid, knownSetKeys, parseSetFlags, SweepError } from '../../../src/eval/sweep.ts';
import type { ScoringChoice } from '../../../src/detection/clip-detector.ts';

describe('--set method', () => {
  it('is a known key and selects the method per configuration', () => {
    expect(knownSetKeys()).toContain('method');
    const configs = expandGrid(parseSetFlags(['method=ours,winclip']));
    expect(configs.map((c) => (c.scoring as ScoringChoice).method)).toEqual(['ours', 'winclip']);
    // Both share one detector: the method is not a graph key.
    expect(configs.map((c) => c.detector)).toEqual([{}, {}]);
  });

  it('refuses other values', () => {
    expect(() => buildConfiguration('c1', { method: 'patchcore' })).toThrow(SweepError);
  });
});
