// A batch of textured "normal" images and one with a pasted patch: MuSc must find the patch
// (its highest map values are there) and rank that image first, with and without RsCIN.
import { describe, expect, it } from 'vitest';
import type { MuscFeatures } from '../../../src/methods/musc/features.ts';
import { scoreMusc } from '../../../src/methods/musc/musc.ts';
import { centredLcg } from '../../support/lcg.ts';

const N = 8;
const H = 10;
const W = 10;
const C = 48;
const LAYERS = 2;
const DEFECT_IMAGE = 5;
/** The pasted 2×2 patch: grid rows 3–4, columns 6–7. */
const inDefect = (y: number, x: number) => y >= 3 && y <= 4 && x >= 6 && x <= 7;

function texturedBatch(): MuscFeatures {
  const next = centredLcg(2024);
  const vector = () => Array.from({ length: C }, next);
  // Every layer has its own four texture prototypes; patch (y, x) shows prototype (x + 2y) mod 4.
  const prototypes = Array.from({ length: LAYERS }, () => Array.from({ length: 4 }, vector));
  const defect = Array.from({ length: LAYERS }, vector);
  const tokens = new Float32Array(N * LAYERS * H * W * C);
  for (let i = 0; i < N; i++) {
    for (let l = 0; l < LAYERS; l++) {
      for (let y = 0; y < H; y++) {
        for (let x = 0; x < W; x++) {
          const base = i === DEFECT_IMAGE && inDefect(y, x) ? defect[l] : prototypes[l][(x + 2 * y) % 4];
          const o = (((i * LAYERS + l) * H + y) * W + x) * C;
          for (let c = 0; c < C; c++) tokens[o + c] = base[c] + 0.1 * next();
        }
      }
    }
  }
  // Image embeddings: one shared direction plus a little noise per image.
  const common = vector();
  const imageEmbeds = Float32Array.from({ length: N * 16 }, (_, k) => common[k % 16] + 0.05 * next());
  return { tokens, images: N, layers: LAYERS, grid: { h: H, w: W }, width: C, imageEmbeds, embedDim: 16 };
}

describe('MuSc known answer: a pasted patch', () => {
  const result = scoreMusc(texturedBatch(), { imageSize: 40 });
  const L = H * W;
  const map = result.maps.subarray(DEFECT_IMAGE * L, (DEFECT_IMAGE + 1) * L);

  it('puts the highest map values of the batch on the pasted patch', () => {
    const inside: number[] = [];
    let outside = -Infinity;
    for (let p = 0; p < L; p++) {
      const y = Math.floor(p / W);
      const x = p % W;
      if (inDefect(y, x)) inside.push(map[p]);
      else outside = Math.max(outside, map[p]);
    }
    let otherImages = -Infinity;
    for (let i = 0; i < N * L; i++) if (Math.floor(i / L) !== DEFECT_IMAGE) otherImages = Math.max(otherImages, result.maps[i]);
    // Every patch of the paste scores above every other patch of that image and of the batch.
    expect(Math.min(...inside)).toBeGreaterThan(outside);
    expect(Math.min(...inside)).toBeGreaterThan(otherImages);
  });

  it('ranks the image with the paste first, by map score and after RsCIN', () => {
    const argmax = (a: Float64Array) => a.indexOf(Math.max(...a));
    expect(argmax(result.mapScores)).toBe(DEFECT_IMAGE);
    expect(argmax(result.scores)).toBe(DEFECT_IMAGE);
    expect(result.scores[DEFECT_IMAGE]).toBeGreaterThan(0.5);
  });
});
