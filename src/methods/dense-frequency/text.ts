// The dense-frequency method's class text embeddings (method.md §3): the templated ensemble
// (WinCLIP's states × templates for the category) or the request's custom phrases, each class
// the normalised mean of the normalised prompt embeddings.
import { buildPromptSet, classEmbedding, customPromptSet } from '../../prompts/ensemble.ts';
import type { ClassEmbeddings } from '../../prompts/embedding-cache.ts';
import { promptCacheKey } from '../../prompts/embedding-cache.ts';
import type { PromptChoice } from '../../prompts/prompt-choice.ts';

/** Texts → unnormalised embeddings [texts, dim] (the runtime's text tower). */
export type TextEncoder = (texts: string[], signal?: AbortSignal) => Promise<Float32Array>;

export type TemplatedOrCustom = Exclude<PromptChoice, { mode: 'learned' }>;

function promptSet(category: string, prompts: TemplatedOrCustom) {
  return prompts.mode === 'custom' ? customPromptSet(prompts.normal, prompts.abnormal, category) : buildPromptSet(category);
}

/** The cache key of a category's class embeddings under one model's graphs. */
export function denseFrequencyTextKey(model: string, category: string, prompts: TemplatedOrCustom): string {
  const set = promptSet(category, prompts);
  return promptCacheKey({ model, category, mode: prompts.mode, normal: set.normal, abnormal: set.abnormal });
}

/** Normal and abnormal class embeddings, computed with the text tower. */
export async function denseFrequencyClassEmbeddings(
  encode: TextEncoder,
  dim: number,
  category: string,
  prompts: TemplatedOrCustom,
  signal?: AbortSignal,
): Promise<ClassEmbeddings> {
  const set = promptSet(category, prompts);
  const embeds = await encode([...set.normal, ...set.abnormal], signal);
  return {
    normal: classEmbedding(embeds.subarray(0, set.normal.length * dim), set.normal.length, dim),
    abnormal: classEmbedding(embeds.subarray(set.normal.length * dim), set.abnormal.length, dim),
  };
}
