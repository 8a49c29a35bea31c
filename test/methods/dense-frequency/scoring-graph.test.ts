// The scoring graph against branches.ts (the reference it replaces in the worker): the same
// maps to 1e-5 on smooth, CLIP-like features, for several grids and settings.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultBranchSettings, gridBranchMaps, uniformBranchText, type BranchSettings, type BranchText } from '../../../src/methods/dense-frequency/branches.ts';
import { graphBranchMaps, graphServes, type ScoringInfer } from '../../../src/methods/dense-frequency/scoring-graph.ts';
import { scoringSession } from '../../../src/dev/scoring-session.ts';
import { centredLcg } from '../../support/lcg.ts';

let scoring: Awaited<ReturnType<typeof scoringSession>>;
const infer: ScoringInfer = (inputs) => scoring.infer(inputs);

beforeAll(async () => {
  scoring = await scoringSession(1);
});
afterAll(async () => {
  await scoring?.close();
});

/** Smooth layout plus noise: neighbours resemble each other, so the softmaxes are peaked as on real features. */
function grid(layers: number, h: number, w: number, dim: number, seed: number) {
  const rnd = centredLcg(seed);
  const phase = Float32Array.from({ length: 2 * dim }, rnd);
  const data = new Float32Array(layers * h * w * dim);
  for (let l = 0; l < layers; l++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const base = ((l * h + y) * w + x) * dim;
        for (let c = 0; c < dim; c++) data[base + c] = Math.sin(0.4 * y + 6 * phase[c]) + Math.cos(0.3 * x + 6 * phase[dim + c]) + 0.8 * rnd();
      }
    }
  }
  const vec = () => Float32Array.from({ length: dim }, rnd);
  const text: BranchText = { full: { normal: vec(), abnormal: vec() }, high: { normal: vec(), abnormal: vec() }, low: { normal: vec(), abnormal: vec() } };
  return { grid: { data, layers, gridH: h, gridW: w, dim }, text };
}

function maxDifference(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

const variants: Array<[string, BranchSettings]> = [
  ['defaults', defaultBranchSettings],
  ['CLIP temperature, k=5 with self', { ...defaultBranchSettings, temperature: 0.01, fsam: { ...defaultBranchSettings.fsam, k: 5, includeSelf: true } }],
  ['cutoff 0.1, beta 0.5, sharp GSCM', { ...defaultBranchSettings, cutoff: 0.1, fsam: { ...defaultBranchSettings.fsam, beta: 0.5, tau: 0.05 }, gscm: { tau: 0.02, keyPool: 1 } }],
];

describe('scoring graph', () => {
  for (const [h, w, dim] of [[14, 14, 512], [5, 7, 32], [2, 1, 16]] as const) {
    for (const [name, settings] of variants) {
      it(`matches branches.ts to 1e-5 at ${h}×${w}×${dim}, ${name}`, async () => {
        const { grid: g, text } = grid(3, h, w, dim, h * 100 + w + dim);
        expect(graphServes(settings, h, w)).toBe(true);
        const reference = gridBranchMaps(g, text, settings);
        const got = await graphBranchMaps(infer, g, text, settings);
        for (const branch of ['full', 'high', 'low'] as const) expect(maxDifference(got[branch]!, reference[branch]!)).toBeLessThan(1e-5);
        // Not a trivially constant map: the branches differ from each other.
        expect(maxDifference(reference.high!, reference.low!)).toBeGreaterThan(1e-3);
      });
    }
  }

  it('with templated text the same pair scores every branch', async () => {
    const { grid: g, text } = grid(2, 6, 6, 24, 5);
    const uniform = uniformBranchText(text.full);
    const got = await graphBranchMaps(infer, g, uniform, defaultBranchSettings);
    const reference = gridBranchMaps(g, uniform, defaultBranchSettings);
    for (const branch of ['full', 'high', 'low'] as const) expect(maxDifference(got[branch]!, reference[branch]!)).toBeLessThan(1e-5);
  });

  it('leaves to branches.ts what it does not compute', () => {
    expect(graphServes({ ...defaultBranchSettings, gscm: { tau: 0.1, keyPool: 2 } }, 14, 14)).toBe(false);
    expect(graphServes({ ...defaultBranchSettings, branches: false }, 14, 14)).toBe(false);
    expect(graphServes(defaultBranchSettings, 1, 1)).toBe(false);
    expect(graphServes({ ...defaultBranchSettings, fsam: { ...defaultBranchSettings.fsam, includeSelf: true } }, 1, 1)).toBe(true);
  });
});
