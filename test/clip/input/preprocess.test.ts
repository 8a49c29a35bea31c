import { describe, expect, it } from 'vitest';
import { applyOpenClipPreprocess, CLIP_MEAN, CLIP_STD, readPreprocessorConfig } from '../../../src/clip/input/preprocess.ts';

describe('open_clip preprocess_cfg', () => {
  const base = readPreprocessorConfig({});

  it('takes mean and std from open_clip_config.json preprocess_cfg', () => {
    const json = { model_cfg: {}, preprocess_cfg: { mean: [0.5, 0.5, 0.5], std: [0.25, 0.5, 0.75], interpolation: 'bicubic' } };
    expect(applyOpenClipPreprocess(base, json)).toEqual({ size: base.size, mean: [0.5, 0.5, 0.5], std: [0.25, 0.5, 0.75] });
  });

  it('keeps the base constants without preprocess_cfg or with invalid values', () => {
    expect(applyOpenClipPreprocess(base, { model_cfg: {} })).toEqual({ size: base.size, mean: CLIP_MEAN, std: CLIP_STD });
    expect(applyOpenClipPreprocess(base, { preprocess_cfg: { mean: [1, 2], std: [0, 1, 1] } })).toEqual({ size: base.size, mean: CLIP_MEAN, std: CLIP_STD });
  });
});
