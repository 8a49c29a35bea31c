import { describe, expect, it } from 'vitest';
import type { Region } from '../../src/scoring/regions.ts';
import { summarize } from '../../src/scoring/summary.ts';

const region = (x: number, y: number, w: number, h: number, area: number, peak: number): Region => ({
  bbox: { x, y, w, h },
  area,
  areaFraction: area / (800 * 320),
  peak,
  meanScore: peak - 0.1,
});

describe('summarize', () => {
  it('describes an anomalous result with its largest region', () => {
    const text = summarize({
      category: 'metal plate',
      score: 0.8312,
      threshold: 0.5,
      isAnomalous: true,
      regions: [region(10, 10, 8, 8, 50, 0.95), region(120, 40, 64, 32, 2048, 0.9)],
      width: 800,
      height: 320,
    });
    expect(text).toBe('metal plate: anomalous (score 0.83 ≥ threshold 0.50); 2 suspect regions, largest at x=120,y=40 (64×32 px, 0.8% of the image).');
  });

  it('describes a normal result in one short sentence', () => {
    expect(summarize({ category: 'bottle', score: 0.21, threshold: 0.5, isAnomalous: false, regions: [], width: 10, height: 10 })).toBe(
      'bottle: looks normal (score 0.21 < threshold 0.50).',
    );
  });

  it('handles one region, no region, tiny regions and close scores', () => {
    const one = summarize({ category: 'pcb', score: 0.7, threshold: 0.5, isAnomalous: true, regions: [region(1, 2, 3, 4, 10, 0.8)], width: 800, height: 320 });
    expect(one).toBe('pcb: anomalous (score 0.70 ≥ threshold 0.50); 1 suspect region at x=1,y=2 (3×4 px, <0.1% of the image).');
    const none = summarize({ category: '', score: 0.7, threshold: 0.5, isAnomalous: true, regions: [], width: 8, height: 8 });
    expect(none).toBe('image: anomalous (score 0.70 ≥ threshold 0.50); no localized suspect region.');
    const close = summarize({ category: 'cable', score: 0.4996, threshold: 0.5, isAnomalous: false, regions: [], width: 8, height: 8 });
    expect(close).toBe('cable: looks normal (score 0.4996 < threshold 0.5000).');
    const weak = summarize({ category: 'cable', score: 0.3, threshold: 0.5, isAnomalous: false, regions: [region(0, 0, 16, 16, 256, 0.6)], width: 800, height: 320 });
    expect(weak).toBe('cable: looks normal (score 0.30 < threshold 0.50); 1 weak suspect region at x=0,y=0 (16×16 px, 0.1% of the image).');
  });

  it('never prints the two numbers equal with "<" between them: more digits, then "just below"', () => {
    const at = (score: number, threshold: number) => summarize({ category: 'nut', score, threshold, isAnomalous: score >= threshold, regions: [], width: 8, height: 8 });
    expect(at(0.58999, 0.59)).toBe('nut: looks normal (score 0.58999 < threshold 0.59000).');
    // A calibrated threshold sits just above a normal score (nextUp): no decimal tells them apart.
    const s = 0.59;
    const t = s + Number.EPSILON / 2;
    expect(t).toBeGreaterThan(s);
    expect(at(s, t)).toBe('nut: looks normal (score 0.590000 just below threshold 0.590000).');
    expect(at(0.5, 0.5)).toBe('nut: anomalous (score 0.50 ≥ threshold 0.50); no localized suspect region.');
  });

  it('says why a stored category\'s calibration was not used, where it says "default"', () => {
    const base = { category: 'tile', score: 0.3, threshold: 0.5, isAnomalous: false, regions: [], width: 8, height: 8, thresholdSource: 'default' as const };
    expect(summarize(base)).toBe('tile: looks normal (score 0.30 < threshold 0.50, default, not calibrated for this category).');
    expect(summarize({ ...base, thresholdNote: "the category's calibration is out of date" })).toBe(
      "tile: looks normal (score 0.30 < threshold 0.50, default: the category's calibration is out of date).",
    );
  });
});
