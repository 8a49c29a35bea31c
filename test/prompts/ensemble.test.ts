import { describe, expect, it } from 'vitest';
import {
  ANOMALOUS_STATES,
  NORMAL_STATES,
  TEMPLATES,
  WINCLIP_DUPLICATED_TEMPLATE,
  WINCLIP_PARITY_TEMPLATES,
  buildPromptSet,
  classEmbedding,
  customPromptSet,
} from '../../src/prompts/ensemble.ts';

describe('buildPromptSet', () => {
  it('crosses 7 normal and 4 abnormal states with the 20 distinct templates', () => {
    expect(NORMAL_STATES).toHaveLength(7);
    expect(ANOMALOUS_STATES).toHaveLength(4);
    expect(TEMPLATES).toHaveLength(20);
    expect(new Set(TEMPLATES).size).toBe(20);
    const set = buildPromptSet('bottle');
    expect(set.normal).toHaveLength(7 * 20);
    expect(set.abnormal).toHaveLength(4 * 20);
    expect(set.normal[0]).toBe('a cropped photo of the bottle.');
    expect(set.normal[20]).toBe('a cropped photo of the flawless bottle.');
    expect(set.normal.at(-1)).toBe('a photo of a bottle without damage for anomaly detection.');
    expect(set.abnormal[0]).toBe('a cropped photo of the damaged bottle.');
    expect(set.abnormal).toContain('a photo of a small bottle with defect.');
    expect(set.normal.every((p) => !p.includes('{}'))).toBe(true);
  });

  it('offers anomalib parity (21 templates, duplicated jpeg) and APRIL-GAN broken as options', () => {
    expect(WINCLIP_PARITY_TEMPLATES).toHaveLength(21);
    expect(WINCLIP_PARITY_TEMPLATES.filter((t) => t === WINCLIP_DUPLICATED_TEMPLATE)).toHaveLength(2);
    const parity = buildPromptSet('metal plate', { winclipParity: true });
    expect(parity.normal).toHaveLength(7 * 21);
    expect(parity.abnormal).toHaveLength(4 * 21);
    const broken = buildPromptSet('metal plate', { includeBroken: true });
    expect(broken.abnormal).toHaveLength(5 * 20);
    expect(broken.abnormal).toContain('a photo of the broken metal plate.');
    expect(buildPromptSet('metal plate').abnormal.some((p) => p.includes('broken'))).toBe(false);
  });

  it('rejects an empty category', () => {
    expect(() => buildPromptSet('  ')).toThrow(RangeError);
  });
});

describe('customPromptSet', () => {
  it('replaces {} by the category and keeps phrases without it', () => {
    const set = customPromptSet(['a photo of a clean {}', 'no scratches'], ['a {} with a {} crack'], 'pcb');
    expect(set.normal).toEqual(['a photo of a clean pcb', 'no scratches']);
    expect(set.abnormal).toEqual(['a pcb with a pcb crack']);
  });

  it('fills {} with "object" when no category is given, and rejects empty sides', () => {
    expect(customPromptSet(['a good {}'], ['a broken {}']).normal).toEqual(['a good object']);
    expect(() => customPromptSet([], ['x'])).toThrow(RangeError);
    expect(() => customPromptSet(['x'], ['  '])).toThrow(RangeError);
  });
});

describe('classEmbedding', () => {
  it('normalises rows, averages and re-normalises', () => {
    // Rows [3, 4] and [0, 2] → unit [0.6, 0.8] and [0, 1] → mean [0.3, 0.9] → / sqrt(0.9).
    const e = classEmbedding(Float32Array.of(3, 4, 0, 2), 2, 2);
    const norm = Math.sqrt(0.9);
    expect(e[0]).toBeCloseTo(0.3 / norm, 6);
    expect(e[1]).toBeCloseTo(0.9 / norm, 6);
  });

  it('returns a unit vector for random prompts', () => {
    const n = 140;
    const dim = 32;
    const embeds = new Float32Array(n * dim);
    let seed = 1;
    for (let i = 0; i < embeds.length; i++) {
      seed = (seed * 16807) % 2147483647;
      embeds[i] = (seed / 2147483647 - 0.3) * (1 + (i % 7));
    }
    const e = classEmbedding(embeds, n, dim);
    let sq = 0;
    for (const v of e) sq += v * v;
    expect(Math.sqrt(sq)).toBeCloseTo(1, 6);
  });

  it('rejects bad shapes', () => {
    expect(() => classEmbedding(new Float32Array(3), 2, 2)).toThrow(RangeError);
  });
});
