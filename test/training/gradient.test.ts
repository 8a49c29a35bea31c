// Gradient checks: the analytic gradient of the training loss (backward.ts) against central
// finite differences of the forward pass (the scoring code itself), for every trained
// parameter, on small random cases. The forward pass runs in float32 (it is the service's
// scoring), so the tolerance allows for float32 rounding in the differences.
import { describe, expect, it } from 'vitest';
import { defaultScoringSettings, type ScoringSettings } from '../../src/methods/dense-frequency/pipeline.ts';
import { batchLoss } from '../../src/training/objective.ts';
import { TEXT_PAIRS } from '../../src/training/parameters.ts';
import { seededRandom } from '../../src/util/rng.ts';
import { defaultLossSettings } from '../../src/training/loss.ts';
import { gaussian, randomSample, randomSpace } from './random-samples.ts';

function checkGradient(scoring: ScoringSettings, seed: number): void {
  const random = seededRandom(seed);
  const dim = 8;
  const space = randomSpace(dim, scoring, random);
  const samples = [randomSample(random, 1, 4, dim, 2, 8, scoring.cutoff), randomSample(random, 0, 4, dim, 2, 8, scoring.cutoff)];
  // A generic point, away from the templated start: every offset non-zero, text off the unit sphere.
  const theta = space.initial();
  const textSize = space.logTemperature;
  for (let i = 0; i < theta.length; i++) theta[i] += (i < textSize ? 0.05 : 0.2) * gaussian(random);

  const grad = new Float64Array(space.size);
  const at = batchLoss(space, theta, samples, defaultLossSettings, grad);
  expect(Number.isFinite(at.total)).toBe(true);
  const h = 1e-3;
  const failures: string[] = [];
  for (let i = 0; i < space.size; i++) {
    const plus = theta.slice();
    plus[i] += h;
    const minus = theta.slice();
    minus[i] -= h;
    const numeric = (batchLoss(space, plus, samples).total - batchLoss(space, minus, samples).total) / (2 * h);
    const error = Math.abs(numeric - grad[i]);
    // 2 % relative, plus a floor for float32 rounding in the differences (~1e-6 here).
    if (error > 1e-5 + 2e-2 * Math.abs(numeric)) failures.push(`${space.nameOf(i)}: analytic ${grad[i]}, numeric ${numeric}`);
  }
  expect(failures).toEqual([]);
  // Not a vacuous check: every group of parameters has a gradient that matters.
  for (const i of [space.logTemperature, space.fsamBeta, space.fsamLogTau, space.gscmLogTau, space.fusion, space.fusion + 1, space.fusion + 2]) {
    expect(Math.abs(grad[i]), space.nameOf(i)).toBeGreaterThan(2e-5);
  }
  for (const pair of TEXT_PAIRS) {
    const o = space.textOffset(pair, 'abnormal');
    expect(Math.hypot(...grad.subarray(o, o + dim)), pair).toBeGreaterThan(1e-4);
  }
}

describe('training gradients', () => {
  it('match finite differences for every parameter (2 images, 4×4 grid, D=8, 2 layers)', () => {
    checkGradient({ ...defaultScoringSettings, temperature: 0.2, fsam: { ...defaultScoringSettings.fsam, tau: 0.3 }, gscm: { ...defaultScoringSettings.gscm, tau: 0.3 } }, 1);
  });

  it('match at the default settings', () => {
    checkGradient(defaultScoringSettings, 2);
  });

  it('match with FSAM attending to itself and GSCM on pooled keys', () => {
    const s = defaultScoringSettings;
    // A wider low band (cutoff 0.6) so the pooled low features differ enough for τ to matter.
    checkGradient({ ...s, temperature: 0.15, cutoff: 0.6, fsam: { ...s.fsam, includeSelf: true, tau: 0.25 }, gscm: { tau: 0.2, keyPool: 2 } }, 3);
  });
});
