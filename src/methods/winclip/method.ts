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
import {
  WINCLIP_REFERENCES_TASK_NAME,
  WINCLIP_TASK_NAME,
  type WinclipOutcome,
  type WinclipPayload,
  type WinclipReferenceEmbedding,
  type WinclipReferencesPayload,
} from './worker-task.ts';
import type { WinclipReferences } from './scoring.ts';

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
  /**
   * Stored references are used as request references are: up to 8 images (when the request sends
   * none). The category service caches this memory (the decoded images) per category version, so
   * their window embeddings, cached per image object below, are computed once per version.
   */
  readonly references: ReferenceMemory = { from: 'images', limit: 8, memory: (images) => images };

  /**
   * Window-graph outputs per reference image object: a stored category's images live as long as
   * its cached memory, a request's as long as the request, so each reference is encoded once
   * however many queries use it (WinCLIP+ re-encoded them with every query before).
   */
  private readonly encoded = new WeakMap<DecodedImage, Promise<WinclipReferenceEmbedding>>();

  /** Window-graph runs on reference images and the images they encoded (tests and benches read them). */
  readonly referenceEncoding = { runs: 0, images: 0 };

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

  /** The references' window embeddings and patch tokens, pooled over images; the ones not cached yet in one run. */
  private async referenceEmbeddings(references: readonly DecodedImage[]): Promise<WinclipReferences> {
    const missing = [...new Set(references.filter((im) => !this.encoded.has(im)))];
    if (missing.length) {
      const windows = this.windows;
      const payload: WinclipReferencesPayload = {
        images: missing.map(rgbForWorker),
        preprocess: { ...this.ctx.runtime.preprocess, size: windows.imageSize },
        windowSizes: windows.windowSizes,
      };
      this.referenceEncoding.runs += 1;
      this.referenceEncoding.images += missing.length;
      // Not bound to this request's signal: other requests may wait for the same references, and
      // a finished encoding is kept for the next one.
      const running = this.ctx.runtime.pool.runTask<WinclipReferenceEmbedding[]>(WINCLIP_REFERENCES_TASK_NAME, payload, []);
      missing.forEach((im, i) => {
        const one = running.then((all) => all[i]);
        this.encoded.set(im, one);
        // A failed or aborted run is not cached: the next request tries again.
        one.catch(() => this.encoded.get(im) === one && this.encoded.delete(im));
      });
    }
    const each = await Promise.all(references.map((im) => this.encoded.get(im)!));
    const concat = (parts: Float32Array[]) => {
      const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
      let at = 0;
      for (const p of parts) {
        out.set(p, at);
        at += p.length;
      }
      return out;
    };
    return {
      windowEmbeds: each[0].windowEmbeds.map((_, s) => concat(each.map((e) => e.windowEmbeds[s]))),
      patchTokens: concat(each.map((e) => e.patchTokens)),
    };
  }

  /** The window graph and WinCLIP's scoring in a worker for one image and its (cached) reference embeddings. */
  private async run(image: DecodedImage, references: readonly DecodedImage[], text: ClassEmbeddings, threshold: number, signal?: AbortSignal): Promise<WinclipOutcome> {
    const r = this.ctx.runtime;
    const windows = this.windows;
    // The query alone in its run (so its numbers never depend on which references came along).
    const payload: WinclipPayload = {
      images: [rgbForWorker(image)],
      references: references.length ? await this.referenceEmbeddings(references) : undefined,
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
