// The architectures the random-model generator knows (random-model.ts): CLIP configs of the
// published models (ViT-B/32, B/16, B/16-plus-240, L/14-336) and a tiny one for tests, with the
// weight layout each is published in.
import type { WeightLayout } from '../clip/weights/clip-weights.ts';
import type { ClipConfig } from '../clip/types.ts';

export type ArchName = 'tiny' | 'vit-b-32' | 'vit-b-16' | 'vit-b-16-plus-240' | 'vit-l-14-336';

/** Vocabulary of OpenAI's CLIP tokenizer (the full-size archs). */
export const CLIP_VOCAB = 49408;
/** Vocabulary of the synthetic tokenizer that ships with `tiny`. */
export const TINY_VOCAB = 1024;

function clipConfig(
  v: { width: number; layers: number; heads: number; patch: number; image: number },
  t: { width: number; layers: number; heads: number; vocab: number },
  projectionDim: number,
  act: 'quick_gelu' | 'gelu',
): ClipConfig {
  return {
    vision: {
      width: v.width, layers: v.layers, heads: v.heads, mlpWidth: 4 * v.width,
      patchSize: v.patch, imageSize: v.image, layerNormEps: 1e-5, act,
    },
    text: {
      width: t.width, layers: t.layers, heads: t.heads, mlpWidth: 4 * t.width, contextLength: 77,
      vocabSize: t.vocab, layerNormEps: 1e-5, act, eosTokenId: t.vocab - 1, bosTokenId: t.vocab - 2,
    },
    projectionDim,
    logitScale: 100,
  };
}

/** The architectures the generator knows, with their real shapes (tiny: for tests). */
export const ARCHS: Record<ArchName, ClipConfig> = {
  tiny: clipConfig(
    { width: 32, layers: 4, heads: 2, patch: 8, image: 64 },
    { width: 32, layers: 4, heads: 2, vocab: TINY_VOCAB },
    32,
    'quick_gelu',
  ),
  'vit-b-32': clipConfig(
    { width: 768, layers: 12, heads: 12, patch: 32, image: 224 },
    { width: 512, layers: 12, heads: 8, vocab: CLIP_VOCAB },
    512,
    'quick_gelu',
  ),
  'vit-b-16': clipConfig(
    { width: 768, layers: 12, heads: 12, patch: 16, image: 224 },
    { width: 512, layers: 12, heads: 8, vocab: CLIP_VOCAB },
    512,
    'quick_gelu',
  ),
  'vit-b-16-plus-240': clipConfig(
    { width: 896, layers: 12, heads: 14, patch: 16, image: 240 },
    { width: 640, layers: 12, heads: 10, vocab: CLIP_VOCAB },
    640,
    'gelu',
  ),
  'vit-l-14-336': clipConfig(
    { width: 1024, layers: 24, heads: 16, patch: 14, image: 336 },
    { width: 768, layers: 12, heads: 12, vocab: CLIP_VOCAB },
    768,
    'quick_gelu',
  ),
};

/** The layout each arch is published in (ViT-B-16-plus-240 only exists as an open_clip model). */
export const DEFAULT_LAYOUT: Record<ArchName, WeightLayout> = {
  tiny: 'hf',
  'vit-b-32': 'hf',
  'vit-b-16': 'hf',
  'vit-b-16-plus-240': 'open_clip',
  'vit-l-14-336': 'hf',
};

export function isArchName(x: string): x is ArchName {
  return Object.hasOwn(ARCHS, x);
}
