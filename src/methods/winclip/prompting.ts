// WinCLIP's text side as anomalib builds it. The prompt strings are anomalib's
// models/image/winclip/prompting.py create_prompt_ensemble (7 normal and 4 anomalous states ×
// 21 templates, the jpeg template listed twice, state-major), which src/prompts/ensemble.ts
// already reproduces with `winclipParity`. The class embedding follows torch_model.py
// _collect_text_embeddings: the plain mean of the raw (unnormalised) prompt embeddings, with no
// per-prompt normalisation; the cosine in class_scores normalises the mean afterwards. That is
// not our method's normalise-average-renormalise (method.md §3), so it lives here.
import { buildPromptSet, type PromptSet } from '../../prompts/ensemble.ts';

/** The templated ensemble for a category exactly as create_prompt_ensemble lists it. */
export function winclipPromptSet(category: string): PromptSet {
  return buildPromptSet(category, { winclipParity: true });
}

/** The distinct strings of a prompt list and, per prompt, the index of its string. */
export function distinctPrompts(prompts: readonly string[]): { texts: string[]; indexOf: Int32Array } {
  const at = new Map<string, number>();
  const indexOf = new Int32Array(prompts.length);
  prompts.forEach((p, i) => {
    let k = at.get(p);
    if (k === undefined) at.set(p, (k = at.size));
    indexOf[i] = k;
  });
  return { texts: [...at.keys()], indexOf };
}

/**
 * torch.mean(prompt_embeddings, dim=0): `embeds` holds the distinct prompts' embeddings
 * ([texts, dim] row-major) and `indexOf` maps each prompt of the ensemble to its row, so a
 * duplicated prompt counts as often as anomalib lists it.
 */
export function meanPromptEmbedding(embeds: Float32Array, indexOf: Int32Array, dim: number): Float32Array {
  if (indexOf.length === 0) throw new RangeError('meanPromptEmbedding: no prompts');
  const sum = new Float64Array(dim);
  for (const row of indexOf) {
    if ((row + 1) * dim > embeds.length) throw new RangeError(`meanPromptEmbedding: row ${row} outside ${embeds.length / dim} embeddings`);
    for (let k = 0; k < dim; k++) sum[k] += embeds[row * dim + k];
  }
  const out = new Float32Array(dim);
  for (let k = 0; k < dim; k++) out[k] = sum[k] / indexOf.length;
  return out;
}
