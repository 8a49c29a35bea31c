// The dense-frequency method (default): dense CLIP patch features of several layers, split into
// high- and low-frequency branches (FSAM on the high part, GSCM on the low part), each scored
// against the prompts and fused (method.md §2–§5). Its scoring runs in the inference worker
// (worker-task.ts) next to the image tower.
import { badRequest } from '../../errors.ts';
import { uniformBranchText, type BranchText } from './branches.ts';
import { defaultScoringSettings, type ScoringSettings } from './pipeline.ts';
import type { ScoreImagePayload, ScoreImageOutcome, ScoreImagesPayload } from './worker-task.ts';
import { applyLearnedScoring, LearnedPromptsError, weightsFingerprint } from './learned-prompts.ts';
import { GRAPH_FORMAT_VERSION } from '../../clip/onnx/graph-cache.ts';
import { denseFrequencyClassEmbeddings, denseFrequencyTextKey, type TemplatedOrCustom } from './text.ts';
import { rgbForWorker } from '../worker-image.ts';
import type { MethodContext, MethodRequest, MethodRunner, PackedFeatures, ReferenceMemory, ScoringMethod } from '../contract.ts';
import { augmentViews, viewCount } from '../../imaging/augment.ts';
import { scoringGraphSpec } from './scoring-graph.ts';
import { buildPatchMemory, packPatchFeatures, patchKnnGraphSpec, type PatchFeatureShape, type PatchMemory } from './patch-memory.ts';

export const DENSE_FREQUENCY = 'dense-frequency';
const TASK = 'score-image';
const BATCH_TASK = 'score-images';
/**
 * Images per session run of scoreBatch (POST /v1/detect/batch, folder scoring): the image graph
 * takes a batch dimension; README "Batches" has the figures of 1 vs 8 per run.
 */
export const SESSION_BATCH_IMAGES = 8;

/** Two requests the same text, settings and memory score alike: they may share a session run. */
function sameScoring(a: MethodRequest, b: MethodRequest): boolean {
  return (
    a.category === b.category &&
    JSON.stringify(a.prompts) === JSON.stringify(b.prompts) &&
    a.settings === b.settings &&
    a.memory === b.memory &&
    a.partMaps === b.partMaps &&
    a.signal === b.signal
  );
}

export const denseFrequency: ScoringMethod = {
  name: DENSE_FREQUENCY,
  // The method's name before it had one that says what it is.
  aliases: ['ours'],
  description: 'dense CLIP patch features, high/low frequency branches (FSAM, GSCM), fused maps',
  promptModes: ['templated', 'custom', 'learned'],
  taskModules: [new URL('./worker-task.ts', import.meta.url).href],
  graphs: () => [patchKnnGraphSpec(), scoringGraphSpec()],
  validate(options) {
    if (options.references) throw badRequest(`reference images are only used with method=winclip`);
  },
  open: (ctx) => new DenseFrequencyRunner(ctx),
};

class DenseFrequencyRunner implements MethodRunner {
  readonly references: ReferenceMemory;

  constructor(private readonly ctx: MethodContext) {
    const r = ctx.runtime;
    const { augment } = ctx.fewShot;
    const shape: PatchFeatureShape = {
      format: 'dense-frequency/1',
      layers: r.graphOptions.denseLayers.length,
      patches: r.grid * r.grid,
      dim: r.dim,
      views: viewCount(augment),
    };
    this.references = {
      from: 'features',
      // The weights' content (the same on every machine and folder, unlike the graph cache key),
      // every graph option and the views: features computed under another of these are not reused.
      featureKey: `dense-frequency/1:${weightsFingerprint(r.folder)}:${JSON.stringify(r.graphOptions)}:g${GRAPH_FORMAT_VERSION}:views=${augment}`,
      encode: async (images, signal) => {
        const out: PackedFeatures[] = [];
        for (const image of images) {
          const views = augmentViews(image, augment).map(rgbForWorker);
          const { dense } = await r.pool.runTask<{ dense: Float32Array }>('dense-features', { images: views, preprocess: r.preprocess }, [], signal);
          out.push({ shape, data: packPatchFeatures(dense, shape) });
        }
        return out;
      },
      memory: (records, key) => buildPatchMemory(records as Array<{ shape: PatchFeatureShape; data: Buffer }>, shape.layers, shape.patches, shape.dim, key),
    };
  }

  classEmbeddings(category: string, prompts: TemplatedOrCustom, signal?: AbortSignal) {
    const { runtime, text } = this.ctx;
    return text.get(
      denseFrequencyTextKey(runtime.graphs.key, category, prompts),
      () => denseFrequencyClassEmbeddings((t) => runtime.encodeTexts(t), runtime.dim, category, prompts),
      signal,
    );
  }

  async warmUp(): Promise<void> {
    const size = this.ctx.runtime.graphOptions.imageSize;
    const blank = { width: size, height: size, rgb: Buffer.alloc(size * size * 3, 128), format: 'raw' };
    await this.score({ image: blank, references: [], category: 'object', prompts: { mode: 'templated' }, threshold: 0.5, partMaps: false });
  }

  async score(req: MethodRequest): Promise<ScoreImageOutcome & { textMs: number }> {
    const { payload, textMs } = await this.prepare(req);
    const outcome = await this.ctx.runtime.pool.runTask<ScoreImageOutcome>(TASK, { ...payload, image: rgbForWorker(req.image), threshold: req.threshold }, [], req.signal);
    return { ...outcome, textMs };
  }

  /**
   * Several images: consecutive requests that share category, prompts, settings and memory go
   * through the image graph together, up to SESSION_BATCH_IMAGES per session run (one task),
   * at most one run per worker at a time; each image is scored exactly as `score` scores it.
   */
  async scoreBatch(requests: MethodRequest[]): Promise<Array<ScoreImageOutcome & { textMs: number }>> {
    const chunks: Array<{ from: number; to: number }> = [];
    for (let i = 0; i < requests.length; i++) {
      const last = chunks[chunks.length - 1];
      if (last && last.to - last.from < SESSION_BATCH_IMAGES && sameScoring(requests[last.from], requests[i])) last.to = i + 1;
      else chunks.push({ from: i, to: i + 1 });
    }
    const out = new Array<ScoreImageOutcome & { textMs: number }>(requests.length);
    const pool = this.ctx.runtime.pool;
    let next = 0;
    const lane = async () => {
      while (next < chunks.length) {
        const { from, to } = chunks[next++];
        const group = requests.slice(from, to);
        const { payload, textMs } = await this.prepare(group[0]);
        const batch: ScoreImagesPayload = { ...payload, images: group.map((r) => rgbForWorker(r.image)), thresholds: group.map((r) => r.threshold) };
        const outcomes = await pool.runTask<ScoreImageOutcome[]>(BATCH_TASK, batch, [], group[0].signal);
        outcomes.forEach((o, k) => (out[from + k] = { ...o, textMs: k === 0 ? textMs : 0 }));
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(pool.size, chunks.length)) }, lane));
    return out;
  }

  /** What every image of a request's kind is scored with: text, settings, few-shot memory. */
  private async prepare(req: MethodRequest): Promise<{ payload: Omit<ScoreImagePayload, 'image' | 'threshold'>; textMs: number }> {
    const t0 = performance.now();
    let scoring = (req.settings as ScoringSettings | undefined) ?? defaultScoringSettings;
    let text: BranchText;
    if (req.prompts.mode === 'learned') {
      // A learned file brings its branch text and its trained scoring parameters.
      const learned = this.learnedPrompts(req.prompts.name);
      text = learned.text;
      scoring = { ...scoring, ...applyLearnedScoring(scoring, learned.scoring) };
    } else {
      text = uniformBranchText(await this.classEmbeddings(req.category, req.prompts, req.signal));
    }
    const textMs = performance.now() - t0;
    const r = this.ctx.runtime;
    const payload = {
      preprocess: r.preprocess,
      layers: r.graphOptions.denseLayers.length,
      grid: r.grid,
      dim: r.dim,
      text,
      settings: scoring,
      branchMaps: req.partMaps,
      fewShot: req.memory ? { memory: req.memory as PatchMemory, weight: this.ctx.fewShot.weight } : undefined,
    };
    return { payload, textMs };
  }

  /** A learned prompt file by name (the default without one); an unknown name is a 400 listing the names. */
  private learnedPrompts(name?: string) {
    try {
      return this.ctx.learned.resolve(name);
    } catch (err) {
      if (err instanceof LearnedPromptsError) throw badRequest(err.message);
      throw err;
    }
  }
}
