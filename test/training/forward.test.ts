// The training forward pass is the scoring: its maps equal scoreImage's grid maps bit for bit,
// for learned (per-branch) text and trained settings, and θ at the start reproduces templated
// scoring exactly. Plus the small parts of training: the upsampling transpose, Adam, the
// seeded split and the feature cache file.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { uniformBranchText } from '../../src/methods/dense-frequency/branches.ts';
import { defaultScoringSettings, scoreImage, type ScoringSettings } from '../../src/methods/dense-frequency/pipeline.ts';
import { upsampleBilinear } from '../../src/imaging/resample-maps.ts';
import { Adam } from '../../src/training/adam.ts';
import { validationSplit } from '../../src/training/dataset.ts';
import { readFeatures, writeFeatures } from '../../src/training/feature-cache.ts';
import { forwardSample } from '../../src/training/forward.ts';
import { ParameterSpace, TEXT_PAIRS, type ParameterBase } from '../../src/training/parameters.ts';
import { seededRandom } from '../../src/util/rng.ts';
import { prepareSample, type ImageFeatures } from '../../src/training/sample.ts';
import { upsampleBilinearTranspose } from '../../src/training/upsample-transpose.ts';

const dir = mkdtempSync(join(tmpdir(), 'training-forward-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const random = seededRandom(11);
const gaussian = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());

function features(grid: number, dim: number, layers: number, maskSize: number): ImageFeatures {
  const mask = Uint8Array.from({ length: maskSize * maskSize }, () => (random() < 0.1 ? 1 : 0));
  return {
    imageEmbed: Float32Array.from({ length: dim }, gaussian),
    dense: Float32Array.from({ length: layers * grid * grid * dim }, gaussian),
    layers,
    gridH: grid,
    gridW: grid,
    dim,
    mask,
    maskSize,
    label: 1,
  };
}

function scoreGrid(f: ImageFeatures, text: ReturnType<typeof uniformBranchText>, settings: ScoringSettings) {
  return scoreImage({ ...f, text, width: 40, height: 30, inputSize: 64, settings });
}

describe('training forward pass', () => {
  const dim = 16;
  const pair = () => ({ normal: Float32Array.from({ length: dim }, gaussian), abnormal: Float32Array.from({ length: dim }, gaussian) });

  it('gives scoreImage’s grid maps and image probability bit for bit, for any θ', () => {
    const start = pair();
    const base: ParameterBase = { dim, text: { full: start, high: start, low: start, image: start }, scoring: defaultScoringSettings };
    const space = new ParameterSpace(base);
    const theta = space.initial();
    for (let i = 0; i < theta.length; i++) theta[i] += 0.3 * gaussian();
    for (const keyPool of [1, 2]) {
      const settings = { ...space.scoring(theta), gscm: { ...space.scoring(theta).gscm, keyPool } };
      const f = features(6, dim, 3, 24);
      const text = space.branchText(theta);
      const fwd = forwardSample(prepareSample(f, settings.cutoff), text, settings);
      const ref = scoreGrid(f, text, settings);
      expect(fwd.maps.full).toEqual(ref.grid.full);
      expect(fwd.maps.high).toEqual(ref.grid.high);
      expect(fwd.maps.low).toEqual(ref.grid.low);
      expect(fwd.fused).toEqual(ref.grid.fused);
      expect(fwd.pImage).toBe(ref.pImage);
      expect(fwd.upsampled).toEqual(upsampleBilinear(ref.grid.fused, 6, 6, 24, 24));
    }
  });

  it('at the starting point reproduces templated scoring exactly', () => {
    const templated = pair();
    const space = new ParameterSpace({ dim, text: Object.fromEntries(TEXT_PAIRS.map((p) => [p, templated])) as ParameterBase['text'], scoring: defaultScoringSettings });
    const theta = space.initial();
    const settings = space.scoring(theta);
    expect(settings).toEqual(defaultScoringSettings);
    const text = space.branchText(theta);
    for (const p of TEXT_PAIRS) expect(text[p]).toEqual(templated);
    const f = features(7, dim, 2, 28);
    const fwd = forwardSample(prepareSample(f, settings.cutoff), text, settings);
    const ref = scoreGrid(f, uniformBranchText(templated), defaultScoringSettings);
    expect(fwd.fused).toEqual(ref.grid.fused);
    expect(fwd.pImage).toBe(ref.pImage);
  });
});

describe('training parts', () => {
  it('upsampling transpose is the adjoint of upsampleBilinear: <U f, g> = <f, Uᵀ g>', () => {
    for (const [h, w, outW, outH] of [[4, 4, 8, 8], [3, 5, 17, 11], [14, 14, 224, 224]]) {
      const f = Float32Array.from({ length: h * w }, gaussian);
      const g = Float64Array.from({ length: outW * outH }, gaussian);
      const uf = upsampleBilinear(f, h, w, outW, outH);
      const utg = upsampleBilinearTranspose(g, h, w, outW, outH);
      let left = 0;
      let right = 0;
      for (let i = 0; i < uf.length; i++) left += uf[i] * g[i];
      for (let i = 0; i < f.length; i++) right += f[i] * utg[i];
      expect(right).toBeCloseTo(left, 3);
    }
  });

  it('Adam minimises a badly scaled quadratic', () => {
    const scales = Float64Array.of(1, 100, 0.01);
    const target = Float64Array.of(3, -2, 0.5);
    const theta = new Float64Array(3);
    const adam = new Adam(3, { lr: 0.05 });
    for (let step = 0; step < 2000; step++) {
      const grad = theta.map((t, i) => 2 * scales[i] * (t - target[i]));
      adam.step(theta, grad);
    }
    for (let i = 0; i < 3; i++) expect(theta[i]).toBeCloseTo(target[i], 2);
    expect(adam.steps).toBe(2000);
  });

  it('validation split is seeded, stratified per category and label, and disjoint', () => {
    const images = [
      ...Array.from({ length: 20 }, () => ({ category: 'a', label: 0 as const })),
      ...Array.from({ length: 10 }, () => ({ category: 'a', label: 1 as const })),
      ...Array.from({ length: 5 }, () => ({ category: 'b', label: 1 as const })),
      { category: 'c', label: 1 as const },
    ];
    const split = validationSplit(images, 0.2, 3);
    expect(validationSplit(images, 0.2, 3)).toEqual(split);
    expect(validationSplit(images, 0.2, 4)).not.toEqual(split);
    const val = split.validation.map((i) => images[i]);
    expect(val.filter((i) => i.category === 'a' && i.label === 0)).toHaveLength(4);
    expect(val.filter((i) => i.category === 'a' && i.label === 1)).toHaveLength(2);
    expect(val.filter((i) => i.category === 'b')).toHaveLength(1);
    expect(val.filter((i) => i.category === 'c')).toHaveLength(0); // a lone image stays in training
    expect(new Set([...split.train, ...split.validation]).size).toBe(images.length);
    expect(validationSplit(images, 0, 3).validation).toEqual([]);
  });

  it('feature cache files read back exactly what was written', () => {
    const f = features(5, 12, 3, 20);
    f.label = 0;
    const file = join(dir, 'key', 'x.bin');
    writeFeatures(file, 'key', 'image.png', f);
    expect(readFeatures(file)).toEqual(f);
  });
});
