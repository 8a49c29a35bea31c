// --set parsing, the configuration grid and the one-detector-at-a-time grouping.
import { describe, expect, it } from 'vitest';
import { defaultScoringSettings } from '../../src/methods/dense-frequency/pipeline.ts';
import {
  buildConfiguration,
  expandGrid,
  forEachDetector,
  groupByDetector,
  knownSetKeys,
  parseSetFlag,
  parseSetFlags,
  scoringKeys,
  SweepError,
} from '../../src/eval/sweep.ts';

describe('parseSetFlags', () => {
  it('splits values on commas', () => {
    expect(parseSetFlag('temperature=0.05, 0.07')).toEqual({ key: 'temperature', values: ['0.05', '0.07'] });
  });

  it('knows every scoring setting by dotted path, plus the graph and model keys', () => {
    const keys = knownSetKeys();
    for (const k of ['temperature', 'cutoff', 'branches', 'sigma', 'fsam.k', 'fsam.beta', 'fsam.tau', 'gscm.tau', 'fusion.full', 'fusion.high', 'fusion.low', 'imageScore.alpha', 'imageScore.topKPercent', 'fusion', 'model', 'imageSize', 'denseLayers', 'denseStart', 'denseAttention']) {
      expect(keys).toContain(k);
    }
    expect(scoringKeys().get('branches')).toBe('boolean');
    expect(scoringKeys().get('fsam.k')).toBe('number');
  });

  it('rejects unknown keys, empty or repeated values, and a key given twice', () => {
    expect(() => parseSetFlag('temprature=1')).toThrow(/unknown key "temprature"/);
    expect(() => parseSetFlag('sigma')).toThrow(SweepError);
    expect(() => parseSetFlag('sigma=1,')).toThrow(/empty value/);
    expect(() => parseSetFlag('sigma=1,1')).toThrow(/repeated/);
    expect(() => parseSetFlags(['sigma=1', 'sigma=2'])).toThrow(/given twice/);
    expect(() => parseSetFlags(['fusion=1+0+0', 'fusion.low=1'])).toThrow(/cannot be combined/);
  });
});

describe('expandGrid', () => {
  it('is one "defaults" configuration without --set', () => {
    const [c, ...rest] = expandGrid([]);
    expect(rest).toEqual([]);
    expect(c).toMatchObject({ id: 'c1', label: 'defaults', set: {}, detector: {} });
    expect(c.scoring).toEqual(defaultScoringSettings);
  });

  it('multiplies repeated flags, first axis slowest', () => {
    const configs = expandGrid(parseSetFlags(['fsam.k=3,5', 'sigma=0,2,4']));
    expect(configs.map((c) => c.label)).toEqual([
      'fsam.k=3 sigma=0',
      'fsam.k=3 sigma=2',
      'fsam.k=3 sigma=4',
      'fsam.k=5 sigma=0',
      'fsam.k=5 sigma=2',
      'fsam.k=5 sigma=4',
    ]);
    expect(configs.map((c) => c.id)).toEqual(['c1', 'c2', 'c3', 'c4', 'c5', 'c6']);
    expect(configs[4].scoring.fsam).toEqual({ ...defaultScoringSettings.fsam, k: 5 });
    expect(configs[4].scoring.sigma).toBe(2);
    // Untouched groups stay the defaults.
    expect(configs[4].scoring.gscm).toEqual(defaultScoringSettings.gscm);
  });

  it('types values by the setting: booleans, numbers, fusion triples', () => {
    const c = buildConfiguration('c1', { branches: 'off', 'imageScore.alpha': '0.25', fusion: '1+0+0' });
    expect(c.scoring.branches).toBe(false);
    expect(c.scoring.imageScore.alpha).toBe(0.25);
    expect(c.scoring.fusion).toEqual({ full: 1, high: 0, low: 0 });
    expect(() => buildConfiguration('c1', { branches: 'maybe' })).toThrow(/true or false/);
    expect(() => buildConfiguration('c1', { cutoff: 'abc' })).toThrow(/not a number/);
    expect(() => buildConfiguration('c1', { fusion: '1+0' })).toThrow(/three weights/);
  });

  it('range-checks with the pipeline before anything runs', () => {
    expect(() => expandGrid(parseSetFlags(['fsam.k=3,4']))).toThrow(/fsam.k=4: fsam.k must be odd/);
    expect(() => expandGrid(parseSetFlags(['imageScore.alpha=2']))).toThrow(SweepError);
  });

  it('reads list values with + or |, and checks graph keys with the service schema', () => {
    const configs = expandGrid(parseSetFlags(['denseLayers=2+3+4,3|4', 'denseAttention=vv,qqkk']));
    expect(configs.map((c) => c.detector)).toEqual([
      { denseLayers: '2,3,4', denseAttention: 'vv' },
      { denseLayers: '2,3,4', denseAttention: 'qqkk' },
      { denseLayers: '3,4', denseAttention: 'vv' },
      { denseLayers: '3,4', denseAttention: 'qqkk' },
    ]);
    expect(configs[0].set).toEqual({ denseLayers: '2+3+4', denseAttention: 'vv' });
    expect(() => expandGrid(parseSetFlags(['denseAttention=qk']))).toThrow(SweepError);
    expect(() => expandGrid(parseSetFlags(['imageSize=big']))).toThrow(SweepError);
    expect(() => expandGrid(parseSetFlags(['denseLayers=2+x']))).toThrow(SweepError);
  });

  it('refuses a grid that is surely a typo', () => {
    const many = Array.from({ length: 17 }, (_, i) => String(i * 0.01 + 0.01));
    expect(() => expandGrid(parseSetFlags([`temperature=${many.join(',')}`, `cutoff=${many.join(',')}`]))).toThrow(/289 configurations/);
  });
});

describe('groupByDetector and forEachDetector', () => {
  it('shares one detector between scoring-only variants', () => {
    const configs = expandGrid(parseSetFlags(['denseLayers=2+3+4,4', 'temperature=0.05,0.07', 'sigma=0,4']));
    const groups = groupByDetector(configs);
    expect(groups).toHaveLength(2);
    expect(groups.map((g) => g.detector)).toEqual([{ denseLayers: '2,3,4' }, { denseLayers: '4' }]);
    expect(groups.map((g) => g.configurations.map((c) => c.id))).toEqual([
      ['c1', 'c2', 'c3', 'c4'],
      ['c5', 'c6', 'c7', 'c8'],
    ]);
  });

  it('opens one detector at a time and closes each, also when a run fails', async () => {
    const groups = groupByDetector(expandGrid(parseSetFlags(['imageSize=32,64', 'sigma=0,4'])));
    const events: string[] = [];
    let open = 0;
    const opener = async (g: (typeof groups)[number]) => {
      open++;
      expect(open).toBe(1);
      events.push(`open ${g.detector.imageSize}`);
      return {
        close: async () => {
          open--;
          events.push(`close ${g.detector.imageSize}`);
        },
      };
    };
    await forEachDetector(groups, opener, async (_d, g) => {
      events.push(`run ${g.configurations.map((c) => c.id).join(',')}`);
    });
    expect(events).toEqual(['open 32', 'run c1,c2', 'close 32', 'open 64', 'run c3,c4', 'close 64']);

    events.length = 0;
    await expect(
      forEachDetector(groups, opener, async () => {
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(events).toEqual(['open 32', 'close 32']);
    expect(open).toBe(0);
  });
});
