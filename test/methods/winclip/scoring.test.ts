// The scoring helpers against anomalib's utils.py docstring examples, and scoreWinclip's
// combination rules on hand-made embeddings.
import { describe, expect, it } from 'vitest';
import { makeMasks } from '../../../src/methods/winclip/masks.ts';
import { classScores, normalizeRows, scoreWinclip, visualAssociationScores } from '../../../src/methods/winclip/scoring.ts';
import { minDistancesInKernel } from '../../../src/methods/winclip/association-kernel.ts';
import { distinctPrompts, meanPromptEmbedding, winclipPromptSet } from '../../../src/methods/winclip/prompting.ts';
import { createPromptEnsembleReference } from '../../support/reference-winclip.ts';
import { centredLcg } from '../../support/lcg.ts';

describe('class_scores and visual_association_score', () => {
  it('class_scores([[1,0,0],[0,1,0]], [[0,1,0],[1,1,0]], T=1)[:, 1] = [0.6698, 0.4273]', () => {
    const text = { normal: Float32Array.of(0, 1, 0), abnormal: Float32Array.of(1, 1, 0) };
    const s = classScores(Float32Array.of(1, 0, 0, 0, 1, 0), 2, 3, text, 1);
    // softmax([0, 1/√2]) and softmax([1, 1/√2]), abnormal entry.
    expect(s[0]).toBeCloseTo(1 / (1 + Math.exp(-Math.SQRT1_2)), 12);
    expect(s[1]).toBeCloseTo(1 / (1 + Math.exp(1 - Math.SQRT1_2)), 12);
    expect(s[0]).toBeCloseTo(0.6698, 4);
    expect(s[1]).toBeCloseTo(0.4273, 4);
  });

  it('visual_association_score example: [0.1464, 0]', () => {
    const s = visualAssociationScores(Float32Array.of(1, 0, 0, 0, 1, 0), 2, Float32Array.of(0, 1, 0, 1, 1, 0), 2, 3);
    expect(s[0]).toBeCloseTo((1 - Math.SQRT1_2) / 2, 12);
    expect(s[1]).toBe(0);
  });

  it('visual_association_score (eight rows at a time in WebAssembly, the last block padded) equals the one-row-at-a-time definition bit for bit', () => {
    const rnd = centredLcg(5);
    // 27 rows: three kernel blocks of eight and one of three (padded); a repeated reference row (ties).
    const [n, m, d] = [27, 7, 37];
    const q = Float32Array.from({ length: n * d }, rnd);
    const r = Float32Array.from({ length: m * d }, rnd);
    r.copyWithin(6 * d, 2 * d, 3 * d);
    const [qn, rn] = [normalizeRows(q, n, d), normalizeRows(r, m, d)];
    const expected = Array.from({ length: n }, (_, i) => {
      let best = Infinity;
      for (let j = 0; j < m; j++) {
        let dot = 0;
        for (let k = 0; k < d; k++) dot += qn[i * d + k] * rn[j * d + k];
        best = Math.min(best, 1 - dot);
      }
      return best / 2;
    });
    expect(Array.from(visualAssociationScores(q, n, r, m, d))).toEqual(expected);
    // The kernel is there on this Node and scored every row.
    expect(minDistancesInKernel(qn, n, rn, m, d, new Float64Array(n))).toBe(n);
  });
});

describe('prompts and the class embedding', () => {
  it("are anomalib's create_prompt_ensemble, 147 normal and 84 anomalous, duplicates kept", () => {
    const ours = winclipPromptSet('metal nut');
    const ref = createPromptEnsembleReference('metal nut');
    expect(ours.normal).toEqual(ref.normal);
    expect(ours.abnormal).toEqual(ref.anomalous);
    expect([ours.normal.length, ours.abnormal.length]).toEqual([147, 84]);
  });

  it('the class embedding is the plain mean over the listed prompts (a duplicate counts twice)', () => {
    const { texts, indexOf } = distinctPrompts(['a', 'b', 'a']);
    expect(texts).toEqual(['a', 'b']);
    const mean = meanPromptEmbedding(Float32Array.of(3, 0, 0, 6), indexOf, 2);
    expect(Array.from(mean)).toEqual([2, 2]);
  });
});

describe('scoreWinclip combination', () => {
  // 3×3 grid, one scale of 2×2 windows, dim 2: the text says "x is normal, y is abnormal".
  const masks = [makeMasks(3, 3, 2)];
  const text = { normal: Float32Array.of(1, 0), abnormal: Float32Array.of(0, 1) };
  const embeddings = {
    imageEmbed: Float32Array.of(1, 1),
    windowEmbeds: [Float32Array.of(1, 0, 1, 0, 1, 0, 0, 1)],
    patchTokens: new Float32Array(9 * 2).map((_, i) => (i % 2 ? 1 : 0.5)),
  };

  it('zero-shot: image score from the image embedding, map = harmonic mean of image score and the scale map', () => {
    const r = scoreWinclip({ embeddings, text, masks, dim: 2, width: 2 });
    expect(r.pImage).toBeCloseTo(0.5, 12); // equal cosines
    expect(r.imageScore).toBe(r.pImage);
    const low = 1 / (1 + Math.exp(1 / 0.07)); // a normal-looking window
    const high = 1 - low;
    // Patch 8 sees only the last (abnormal) window; patch 0 only a normal one.
    expect(r.map[8]).toBeCloseTo(2 / (1 / 0.5 + 1 / high), 12);
    expect(r.map[0]).toBeCloseTo(2 / (1 / 0.5 + 1 / low), 12);
    expect(r.fewShotMap).toBeUndefined();
  });

  it('few-shot: maps averaged, image score averaged with the few-shot maximum', () => {
    const references = { windowEmbeds: [embeddings.windowEmbeds[0].slice()], patchTokens: embeddings.patchTokens.slice() };
    references.patchTokens[0] = 5; // reference patch 0 points elsewhere; the query's patch 0 still matches others
    const zero = scoreWinclip({ embeddings, text, masks, dim: 2, width: 2 });
    const r = scoreWinclip({ embeddings, references, text, masks, dim: 2, width: 2 });
    // Every query embedding has an identical reference: association 0 at every scale.
    for (const v of r.fewShotMap!) expect(v).toBeCloseTo(0, 12);
    r.map.forEach((v, i) => expect(v).toBeCloseTo(zero.map[i] / 2, 12));
    expect(r.imageScore).toBeCloseTo(zero.pImage / 2, 12);
  });
});
