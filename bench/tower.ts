// Tower figures shared by bench:clip and `npm run bench`: the image tower at a batch size and the
// text tower on one category's prompt ensemble, run in the worker as the service runs them, and
// the multiply-adds of a ViT (what the MatMul floor of a tower is computed from).
import type { ClipConfig } from '../src/clip/types.ts';
import type { WorkerPool } from '../src/clip/runtime/worker-pool.ts';
import type { ClipTokenizer } from '../src/clip/input/tokenizer.ts';
import { trimToPooling } from '../src/clip/input/tokenizer.ts';
import { buildPromptSet } from '../src/prompts/ensemble.ts';
import { time, type Figure } from './figures.ts';

/** Multiply-adds of `layers` pre-norm transformer blocks on `tokens` tokens of `width` (QKV, out, MLP 4×, attention). */
export function transformerMacs(tokens: number, width: number, layers: number): number {
  return layers * (tokens * 12 * width * width + 2 * tokens * tokens * width);
}

/** The image tower's multiply-adds for one image (patch embedding included). */
export function imageTowerMacs(config: ClipConfig, imageSize: number): number {
  const { patchSize, width, layers } = config.vision;
  const grid = Math.floor(imageSize / patchSize);
  const patches = grid * grid;
  return patches * 3 * patchSize * patchSize * width + transformerMacs(patches + 1, width, layers);
}

/** The image tower at `batch`, as `pool.infer('image')` (what the service's workers run). */
export function imageTowerFigure(pool: WorkerPool, size: number, batch: number, runs: number, name = `image tower batch ${batch}`): Promise<Figure> {
  const pixels = new Float32Array(batch * 3 * size * size).map((_, i) => Math.sin(i) * 0.5);
  return time(name, runs, () => pool.infer('image', { pixel_values: { type: 'float32', data: pixels.slice(), dims: [batch, 3, size, size] } }));
}

/** One category's templated prompt ensemble. */
export function categoryPrompts(category = 'metal plate'): string[] {
  const prompts = buildPromptSet(category);
  return [...prompts.normal, ...prompts.abnormal];
}

/** The text tower on one category's prompts, in the service's batches of 64; `cut` trims ids after the last end-of-text token. */
export function textTowerRun(pool: WorkerPool, tokenizer: ClipTokenizer, texts: string[], cut: boolean): { run: () => Promise<void>; longest: () => number } {
  let longest = 0;
  return {
    longest: () => longest,
    run: async () => {
      for (let start = 0; start < texts.length; start += 64) {
        const chunk = texts.slice(start, start + 64);
        const full = tokenizer.encode(chunk);
        const { ids, length } = cut ? trimToPooling(full, chunk.length) : { ids: full, length: tokenizer.contextLength };
        longest = Math.max(longest, length);
        await pool.infer('text', { input_ids: { type: 'int64', data: ids, dims: [chunk.length, length] } });
      }
    },
  };
}
