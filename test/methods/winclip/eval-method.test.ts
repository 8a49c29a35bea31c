// The evaluation tool's `--set method=…` key: a configuration's own field, which the evaluation
// hands to ClipDetector.scoreDecoded beside the scoring settings.
import { describe, expect, it } from 'vitest';
import { buildConfiguration, expandGrid, knownSetKeys, parseSetFlags, SweepError } from '../../../src/eval/sweep.ts';

describe('--set method', () => {
  it('is a known key and selects the method per configuration', () => {
    expect(knownSetKeys()).toContain('method');
    const configs = expandGrid(parseSetFlags(['method=dense-frequency,winclip']));
    expect(configs.map((c) => c.method)).toEqual(['dense-frequency', 'winclip']);
    // `ours`, the old name, is an alias; without the key, the default method.
    expect(buildConfiguration('c1', { method: 'ours' }).method).toBe('dense-frequency');
    expect(buildConfiguration('c1', {}).method).toBe('dense-frequency');
    // Both share one detector: the method is not a graph key.
    expect(configs.map((c) => c.detector)).toEqual([{}, {}]);
  });

  it('refuses other values', () => {
    expect(() => buildConfiguration('c1', { method: 'patchcore' })).toThrow(SweepError);
  });
});
