// MuSc's results do not depend on upload order, band (chunk) size, thread split or run: bit for bit.
import { describe, expect, it } from 'vitest';
import { MuscBatch, muscDistanceLength, scoreMusc, type MuscResult } from '../../../src/methods/musc/musc.ts';
import { MutualScorer } from '../../../src/methods/musc/msm.ts';
import { permuteBatch, randomBatch } from '../../support/musc-batch.ts';

const shape = { images: 9, layers: 3, h: 6, w: 7, width: 24 };
const options = { imageSize: 28 };

function bits(a: Float64Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

function expectSameBits(a: MuscResult, b: MuscResult): void {
  expect(bits(a.maps).equals(bits(b.maps))).toBe(true);
  expect(bits(a.mapScores).equals(bits(b.mapScores))).toBe(true);
  expect(bits(a.scores).equals(bits(b.scores))).toBe(true);
}

/** MuSc with the owner ranges `splits` computed by separate scorers into one shared buffer. */
function scoreSplit(splits: number[], bandRows?: number): MuscResult {
  const features = randomBatch(shape, 7);
  const shared = new Float32Array(new SharedArrayBuffer(4 * muscDistanceLength(features)));
  const batch = new MuscBatch(features, options, shared);
  const scorers = splits.slice(1).map(() => new MutualScorer(bandRows));
  for (let l = 0; l < features.layers; l++) {
    const layer = batch.layer(l);
    // Out of order on purpose: the last range first.
    for (let t = scorers.length - 1; t >= 0; t--) {
      scorers[t].setLayer(structuredClone(layer));
      scorers[t].minDistances(splits[t], splits[t + 1], shared);
    }
    batch.addLayer(l);
  }
  return batch.finish();
}

describe('MuSc determinism', () => {
  const features = randomBatch(shape, 7);
  const base = scoreMusc(features, options);

  it('is bit-identical across runs and fresh scorers', () => {
    expectSameBits(scoreMusc(features, options), base);
    const scorer = new MutualScorer();
    scoreMusc(randomBatch(shape, 8), options, scorer); // a scorer that held another batch
    expectSameBits(scoreMusc(features, options, scorer), base);
  });

  it.each([1, 2, 4, 6])('is bit-identical for bands of %i grid rows', (bandRows) => {
    expectSameBits(scoreMusc(features, { ...options, bandRows }), base);
  });

  it.each([[[0, 9]], [[0, 4, 9]], [[0, 1, 2, 5, 9]], [[0, 3, 3, 6, 9]]])('is bit-identical for owner ranges %j', (splits) => {
    expectSameBits(scoreSplit(splits), base);
    expectSameBits(scoreSplit(splits, 2), base);
  });

  it.each([
    [[8, 7, 6, 5, 4, 3, 2, 1, 0]],
    [[3, 0, 7, 1, 8, 2, 6, 4, 5]],
    [[1, 2, 3, 4, 5, 6, 7, 8, 0]],
  ])('gives every image the same bits whatever the upload order %j', (order) => {
    const permuted = scoreMusc(permuteBatch(features, order), options);
    const L = shape.h * shape.w;
    const maps = new Float64Array(base.maps.length);
    const mapScores = new Float64Array(shape.images);
    const scores = new Float64Array(shape.images);
    order.forEach((old, t) => {
      maps.set(permuted.maps.subarray(t * L, (t + 1) * L), old * L);
      mapScores[old] = permuted.mapScores[t];
      scores[old] = permuted.scores[t];
    });
    expectSameBits({ grid: base.grid, maps, mapScores, scores }, base);
  });

  it('gives duplicated images identical results, in any order', () => {
    const dup = permuteBatch(features, [0, 1, 2, 3, 4, 5, 6, 2, 8]);
    const r = scoreMusc(dup, options);
    const L = shape.h * shape.w;
    expect(bits(r.maps.subarray(2 * L, 3 * L)).equals(bits(r.maps.subarray(7 * L, 8 * L)))).toBe(true);
    expect(r.scores[2]).toBe(r.scores[7]);
    const swapped = scoreMusc(permuteBatch(dup, [7, 1, 2, 3, 4, 5, 6, 0, 8]), options);
    expect(bits(swapped.maps.subarray(0, L)).equals(bits(r.maps.subarray(7 * L, 8 * L)))).toBe(true);
  });
});
