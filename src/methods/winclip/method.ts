// WinCLIP exactly as anomalib computes it (method.md §6): window embeddings from their own graph
// (window-graph.ts), anomalib's prompt ensemble (prompting.ts), harmonic aggregation
// (scoring.ts); few-shot WinCLIP+ with normal reference images.
import { badRequest } from '../../errors.ts';
import { customPromptSet } from '../../prompts/ensemble.ts';
import { promptCacheKey, type ClassEmbeddings } from '../../prompts/embedding-cache.ts';
import type { PromptChoice } from '../../prompts/prompt-choice.ts';
import type { DecodedImage } from '../../imaging/decode.ts';
import { rgbForWorker } from '../worker-image.ts';
import type { MethodContext, MethodRequest, MethodRunner, ReferenceMemory, ScoringMethod } from '../contract.ts';
import { distinctPrompts, meanPromptEmbedding, winclipPromptSet } from './prompting.ts';
import { WINCLIP_TEMPERATURE } from './scoring.ts';
import { DEFAULT_WINDOW_SIZES, windowGraphSpec, type WindowGraphOptions } from './window-graph.ts';
import { WINCLIP_TASK_NAME, type WinclipOutcome, type WinclipPayload } from './worker-task.ts';

export const WINCLIP = 'winclip';
/** The window graph's name in the runtime and the workers. */
const GRAPH = 'winclip';

export const winclip: ScoringMethod = {
  name: WINCLIP,
  description: "anomalib's WinCLIP (few-shot WinCLIP+ with normal reference images)",
  switchedOffBy: 'WINCLIP=0',
  promptModes: ['templated', 'custom'],
  taskModules: [new URL('./worker-task.ts', import.meta.url).href],
  graphs: ({ imageSize }) => [windowGraphSpec({ imageSize, windowSizes: [...DEFAULT_WINDOW_SIZES] })],
  validate(options) {
    if (options.prompts.mode === 'learned') throw badRequest('prompts: learned prompts are trained for method=dense-frequency; WinCLIP uses its own prompt ensemble');
    if (options.branches) throw badRequest('branches: branches are part of method=dense-frequency; WinCLIP has none');
  },
  open: (ctx) => new WinclipRunner(ctx),
};

export class WinclipRunner implements MethodRunner {
  /** Stored references are used as request references are: up to 8 images, encoded with the query (when the request sends none). */
  readonly references: ReferenceMemory = { from: 'images', limit: 8, memory: (images) => images };

  constructor(private readonly ctx: MethodContext) {}

  private get windows(): WindowGraphOptions {
    const graph = this.ctx.runtime.extraGraphs[GRAPH];
    if (!graph) throw new Error('the runtime was loaded without the winclip graph');
    return graph.spec.options as WindowGraphOptions;
  }

  /**
   * WinCLIP's class embeddings (prompting.ts): anomalib's ensemble for templated prompts, the
   * plain mean of the raw prompt embeddings; cached beside the other methods' under its own key.
   */
  classEmbeddings(category: string, prompts: Exclude<PromptChoice, { mode: 'learned' }>, signal?: AbortSignal): Promise<ClassEmbeddings> {
    const { runtime, text } = this.ctx;
    const set = prompts.mode === 'custom' ? customPromptSet(prompts.normal, prompts.abnormal, category) : winclipPromptSet(category);
    const key = promptCacheKey({ model: runtime.graphs.key, category, mode: `winclip-${prompts.mode}`, normal: set.normal, abnormal: set.abnormal });
    return text.get(
      key,
      async () => {
        // The duplicated template gives equal strings: encode each once, count it as often as listed.
        const { texts, indexOf } = distinctPrompts([...set.normal, ...set.abnormal]);
        const embeds = await runtime.encodeTexts(texts);
        const dim = runtime.dim;
        return {
          normal: meanPromptEmbedding(embeds, indexOf.subarray(0, set.normal.length), dim),
          abnormal: meanPromptEmbedding(embeds, indexOf.subarray(set.normal.length), dim),
        };
      },
      signal,
    );
  }

  /** The window session with placeholder text: real prompts would cost a second text pass. */
  async warmUp(): Promise<void> {
    const size = this.ctx.runtime.graphOptions.imageSize;
    const blank: DecodedImage = { width: size, height: size, rgb: Buffer.alloc(size * size * 3, 128), format: 'raw' };
    const placeholder = new Float32Array(this.ctx.runtime.dim).fill(1);
    await this.run(blank, [], { normal: placeholder, abnormal: placeholder }, 0.5);
  }

  async score(req: MethodRequest): Promise<WinclipOutcome & { textMs: number }> {
    if (req.prompts.mode === 'learned') throw badRequest('prompts: learned prompts are trained for method=dense-frequency');
    const t0 = performance.now();
    const text = await this.classEmbeddings(req.category, req.prompts, req.signal);
    const textMs = performance.now() - t0;
    // A request's own references win over the category's stored ones.
    const references = req.references.length ? req.references : ((req.memory as readonly DecodedImage[] | undefined) ?? []);
    return { ...(await this.run(req.image, references, text, req.threshold, req.signal)), textMs };
  }

  /** The window graph and WinCLIP's scoring in a worker for one image and its references. */
  private run(image: DecodedImage, references: readonly DecodedImage[], text: ClassEmbeddings, threshold: number, signal?: AbortSignal): Promise<WinclipOutcome> {
    const r = this.ctx.runtime;
    const windows = this.windows;
    // The query and its references in one batch: one session run for all of them.
    const payload: WinclipPayload = {
      images: [image, ...references].map(rgbForWorker),
      preprocess: { ...r.preprocess, size: windows.imageSize },
      grid: r.grid,
      dim: r.dim,
      width: r.config.vision.width,
      windowSizes: windows.windowSizes,
      text,
      temperature: WINCLIP_TEMPERATURE,
      threshold,
    };
    return r.pool.runTask<WinclipOutcome>(WINCLIP_TASK_NAME, payload, [], signal);
  }
}
