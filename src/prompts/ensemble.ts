// Templated prompt ensemble (WinCLIP's compositional prompts, method.md §3) and the class
// text embedding built from it. Only strings and vector arithmetic live here: encoding the
// prompts with the text tower is the caller's job.

/** States of a normal object; `{}` is replaced by the category name. */
export const NORMAL_STATES: readonly string[] = [
  '{}',
  'flawless {}',
  'perfect {}',
  'unblemished {}',
  '{} without flaw',
  '{} without defect',
  '{} without damage',
];

/** States of an anomalous object (WinCLIP). */
export const ANOMALOUS_STATES: readonly string[] = [
  'damaged {}',
  '{} with flaw',
  '{} with defect',
  '{} with damage',
];

/** APRIL-GAN's extra anomalous state; off by default (`EnsembleOptions.includeBroken`). */
export const APRIL_GAN_EXTRA_STATES: readonly string[] = ['broken {}'];

/** The 20 distinct WinCLIP templates, in anomalib's order; `{}` is replaced by a state. */
export const TEMPLATES: readonly string[] = [
  'a cropped photo of the {}.',
  'a close-up photo of a {}.',
  'a close-up photo of the {}.',
  'a bright photo of a {}.',
  'a bright photo of the {}.',
  'a dark photo of the {}.',
  'a dark photo of a {}.',
  'a jpeg corrupted photo of the {}.',
  'a blurry photo of the {}.',
  'a blurry photo of a {}.',
  'a photo of a {}.',
  'a photo of the {}.',
  'a photo of a small {}.',
  'a photo of the small {}.',
  'a photo of a large {}.',
  'a photo of the large {}.',
  'a photo of the {} for visual inspection.',
  'a photo of a {} for visual inspection.',
  'a photo of the {} for anomaly detection.',
  'a photo of a {} for anomaly detection.',
];

/** The template anomalib lists twice (it only re-weights the class mean). */
export const WINCLIP_DUPLICATED_TEMPLATE = 'a jpeg corrupted photo of the {}.';

/** anomalib's 21-entry list: the duplicate sits right after the first jpeg template. */
export const WINCLIP_PARITY_TEMPLATES: readonly string[] = (() => {
  const at = TEMPLATES.indexOf(WINCLIP_DUPLICATED_TEMPLATE);
  return [...TEMPLATES.slice(0, at + 1), WINCLIP_DUPLICATED_TEMPLATE, ...TEMPLATES.slice(at + 1)];
})();

/**
 * Filler for `{}` when a custom phrase has a placeholder but no category was given:
 * AnomalyCLIP's object-agnostic word.
 */
export const DEFAULT_CATEGORY_FILLER = 'object';

export interface PromptSet {
  normal: string[];
  abnormal: string[];
}

export interface EnsembleOptions {
  /** Use anomalib's 21 templates (duplicated jpeg template) for WinCLIP parity. Default false. */
  winclipParity: boolean;
  /** Add APRIL-GAN's `broken {}` state to the anomalous states. Default false. */
  includeBroken: boolean;
}

export const defaultEnsembleOptions: EnsembleOptions = {
  winclipParity: false,
  includeBroken: false,
};

/** Replaces every `{}` in `phrase` by `value`. */
export function fillPlaceholder(phrase: string, value: string): string {
  return phrase.split('{}').join(value);
}

function expand(states: readonly string[], templates: readonly string[], category: string): string[] {
  // State-major order, as anomalib: all templates of state 0, then state 1, ...
  const out: string[] = [];
  for (const state of states) {
    const filledState = fillPlaceholder(state, category);
    for (const template of templates) out.push(fillPlaceholder(template, filledState));
  }
  return out;
}

/** The state × template ensemble for one category: 7×20 normal, 4×20 abnormal by default. */
export function buildPromptSet(category: string, options: Partial<EnsembleOptions> = {}): PromptSet {
  const opts = { ...defaultEnsembleOptions, ...options };
  const name = category.trim();
  if (name.length === 0) throw new RangeError('buildPromptSet: category must not be empty');
  const templates = opts.winclipParity ? WINCLIP_PARITY_TEMPLATES : TEMPLATES;
  const abnormalStates = opts.includeBroken ? [...ANOMALOUS_STATES, ...APRIL_GAN_EXTRA_STATES] : ANOMALOUS_STATES;
  return {
    normal: expand(NORMAL_STATES, templates, name),
    abnormal: expand(abnormalStates, templates, name),
  };
}

/**
 * User phrases as a prompt set. A `{}` in a phrase becomes the category (or
 * DEFAULT_CATEGORY_FILLER when none is given); phrases without `{}` are used as they are.
 */
export function customPromptSet(normal: string[], abnormal: string[], category?: string): PromptSet {
  const filler = category !== undefined && category.trim().length > 0 ? category.trim() : DEFAULT_CATEGORY_FILLER;
  const fill = (phrases: string[], side: string): string[] => {
    const out = phrases.map((p) => fillPlaceholder(p.trim(), filler)).filter((p) => p.length > 0);
    // An empty side would make the class embedding undefined (mean of nothing).
    if (out.length === 0) throw new RangeError(`customPromptSet: no non-empty ${side} phrase`);
    return out;
  };
  return { normal: fill(normal, 'normal'), abnormal: fill(abnormal, 'abnormal') };
}

/**
 * Class text embedding from `n` prompt embeddings ([n, dim] row-major): L2-normalise each
 * row, average, re-normalise (method.md §3). Rows of zero norm are skipped.
 */
export function classEmbedding(embeds: Float32Array, n: number, dim: number): Float32Array {
  if (n <= 0 || dim <= 0 || embeds.length < n * dim) {
    throw new RangeError(`classEmbedding: need [${n}, ${dim}] values, got ${embeds.length}`);
  }
  const sum = new Float64Array(dim);
  for (let r = 0; r < n; r++) {
    const base = r * dim;
    let sq = 0;
    for (let k = 0; k < dim; k++) sq += embeds[base + k] * embeds[base + k];
    if (sq === 0) continue;
    const inv = 1 / Math.sqrt(sq);
    for (let k = 0; k < dim; k++) sum[k] += embeds[base + k] * inv;
  }
  let sq = 0;
  for (let k = 0; k < dim; k++) sq += sum[k] * sum[k];
  if (sq === 0) throw new RangeError('classEmbedding: prompt embeddings average to zero');
  const inv = 1 / Math.sqrt(sq);
  const out = new Float32Array(dim);
  for (let k = 0; k < dim; k++) out[k] = sum[k] * inv;
  return out;
}
