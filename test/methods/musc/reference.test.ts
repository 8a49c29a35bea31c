// The optimised MuSc (one Gram matrix per pair, WebAssembly SIMD, box sums) against the float64
// triple-loop reference written from the authors' formulas (test/support/reference-musc.ts).
import { describe, expect, it } from 'vitest';
import { lnamd } from '../../../src/methods/musc/lnamd.ts';
import { layerTokens } from '../../../src/methods/musc/features.ts';
import { scoreMusc } from '../../../src/methods/musc/musc.ts';
import { referenceMusc } from '../../support/reference-musc.ts';
import { maxAbsDiff, nested, randomBatch } from '../../support/musc-batch.ts';

const cases = [
  { images: 5, layers: 1, h: 3, w: 3, width: 7, degrees: [1], imageSize: 9 },
  { images: 6, layers: 2, h: 4, w: 5, width: 16, degrees: [3], imageSize: 17 },
  { images: 7, layers: 4, h: 5, w: 5, width: 12, degrees: [1, 3, 5], imageSize: 20 },
  { images: 9, layers: 2, h: 6, w: 4, width: 33, degrees: [5, 1], imageSize: 24 },
  { images: 12, layers: 3, h: 7, w: 7, width: 20, degrees: [1, 3, 5], imageSize: 28 },
  { images: 5, layers: 1, h: 2, w: 9, width: 5, degrees: [3, 5], imageSize: 18 },
];

describe('MuSc against the float64 reference', () => {
  it.each(cases)('N=$images layers=$layers grid $h×$w C=$width r=$degrees', ({ degrees, imageSize, ...shape }) => {
    const features = randomBatch(shape, 1000 + shape.images * 31 + shape.width);
    const { tokens, embeds } = nested(features);
    const ref = referenceMusc({ tokens, h: shape.h, w: shape.w, degrees, imageSize, embeds, kList: [1, 2, 3] });
    for (const bandRows of [undefined, 1, 2]) {
      const got = scoreMusc(features, { imageSize, degrees, bandRows });
      expect(maxAbsDiff(got.maps, ref.maps.flat())).toBeLessThan(1e-5);
      expect(maxAbsDiff(got.mapScores, ref.mapScores)).toBeLessThan(1e-5);
      expect(maxAbsDiff(got.scores, ref.scores)).toBeLessThan(1e-5);
    }
  });

  it('lnamd() reproduces the LayerNorm → zero-padded r×r mean → L2 pipeline', () => {
    const shape = { images: 5, layers: 2, h: 5, w: 6, width: 9 };
    const features = randomBatch(shape, 77);
    const degrees = [1, 3, 5];
    const ref = referenceMusc({ ...nested(features), h: 5, w: 6, degrees, imageSize: 10 });
    degrees.forEach((r, d) => {
      for (let l = 0; l < shape.layers; l++) {
        for (let i = 0; i < shape.images; i++) {
          const z = lnamd(layerTokens(features, i, l), features.grid, shape.width, r);
          expect(maxAbsDiff(z, ref.lnamd[d][l][i].flat())).toBeLessThan(1e-6);
        }
      }
    });
  });
});
