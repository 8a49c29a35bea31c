// The detector: decode → class text embeddings (cached) → image tower + scoring in a worker
// → rendering. One instance per loaded model; the HTTP layer and the evaluation tool both
// call detect-style functions from here, so there is one scoring path.
import { join } from 'node:path';
import type { Settings } from '../settings.ts';
import { ClipRuntime, runtimeOptionsFromSettings } from '../clip/runtime/runtime.ts';
import { decodeImage, type DecodedImage, type RgbImage } from '../imaging/decode.ts';
import { ImageDecodeError, ImageTooLargeError } from '../errors.ts';
import { buildPromptSet, classEmbedding, customPromptSet } from '../prompts/ensemble.ts';
import { EmbeddingCache, promptCacheKey, type ClassEmbeddings } from '../prompts/embedding-cache.ts';
import { EmbeddingStore } from '../prompts/embedding-store.ts';
import { applyLearnedScoring, checkpointIdentity, LearnedPromptsError, LearnedPromptsRegistry, type LearnedPrompts } from '../methods/dense-frequency/learned-prompts.ts';
import { uniformBranchText, type BranchText } from '../methods/dense-frequency/branches.ts';
import { defaultScoringSettings, type ScoringSettings } from '../methods/dense-frequency/pipeline.ts';
import type { ScoreImageOutcome, ScoreImagePayload } from '../methods/dense-frequency/worker-task.ts';
import { summarize } from '../scoring/summary.ts';
import { renderHeatmapPng, renderOverlayPng } from '../imaging/heatmap.ts';
import { distinctPrompts, meanPromptEmbedding, winclipPromptSet } from '../methods/winclip/prompting.ts';
import { WINCLIP_TEMPERATURE } from '../methods/winclip/scoring.ts';
import { WINCLIP_TASK_NAME, type WinclipOutcome, type WinclipPayload } from '../methods/winclip/worker-task.ts';
import { badRequest } from '../errors.ts';
import type { DetectionMethod, DetectOptions, DetectResponse, Detector, MapKind, MapPayload, ModelInfo, PromptChoice } from './types.ts';

const SCORING_TASK = new URL('../methods/dense-frequency/worker-task.ts', import.meta.url).href;
const WINCLIP_TASK = new URL('../methods/winclip/worker-task.ts', import.meta.url).href;

/** Scoring settings plus the method (default `ours`): what a caller of scoreDecoded picks per run. */
export type ScoringChoice = ScoringSettings & { method?: DetectionMethod };

const RANDOM_MODEL_WARNING =
  'This is a generated model with random weights: the scores and maps show that the service works, not whether the part is defective.';

export interface ScoredImage {
  image: DecodedImage;
  outcome: ScoreImageOutcome;
  decodeMs: number;
  textMs: number;
}

export class ClipDetector implements Detector {
  private warmedUp = false;
  readonly prompts: EmbeddingCache;
  /** Learned prompt files (PROMPTS_DIR, loaded by createClipDetector); the evaluation may add one. */
  learned = new LearnedPromptsRegistry();

  constructor(
    readonly runtime: ClipRuntime,
    readonly scoring: ScoringSettings = defaultScoringSettings,
    promptCacheSize = 256,
    private readonly maxPixels?: number,
    private readonly maxSide?: number,
    /** Class embeddings on disk, under the LRU: they survive restarts. */
    private readonly store?: EmbeddingStore,
  ) {
    this.prompts = new EmbeddingCache({ capacity: promptCacheSize });
  }

  /** From the disk store when it has them, else computed (and stored). */
  private async storedOrComputed(key: string, compute: () => Promise<ClassEmbeddings>): Promise<ClassEmbeddings> {
    const stored = await this.store?.read(key, this.runtime.dim);
    if (stored) return stored;
    const value = await compute();
    await this.store?.write(key, value);
    return value;
  }

  get ready(): boolean {
    return this.warmedUp;
  }

  info(): ModelInfo {
    const r = this.runtime;
    return {
      id: r.modelId,
      source: r.source,
      generatedRandomModel: Boolean(r.generated),
      inputSize: r.graphOptions.imageSize,
      grid: r.grid,
      denseLayers: r.graphOptions.denseLayers,
      denseStart: r.graphOptions.denseStart,
      denseAttention: r.graphOptions.denseAttention,
      projectionDim: r.dim,
      promptModes: this.learned.size ? ['templated', 'custom', 'learned'] : ['templated', 'custom'],
      methods: r.windowGraph ? ['ours', 'winclip'] : ['ours'],
      learnedPrompts: { folder: this.learned.folder, available: this.learned.summaries(), refused: this.learned.refused() },
    };
  }

  /** A learned prompt file by name (the default without one); an unknown name is a 400 listing the names. */
  learnedPrompts(name?: string): LearnedPrompts {
    try {
      return this.learned.resolve(name);
    } catch (err) {
      if (err instanceof LearnedPromptsError) throw badRequest(err.message);
      throw err;
    }
  }

  /** Runs every stage once so the first real request does not pay for lazy initialisation. */
  async warmUp(): Promise<void> {
    await this.classEmbeddings('object', { mode: 'templated' });
    const size = this.runtime.graphOptions.imageSize;
    const blank: DecodedImage = { width: size, height: size, rgb: Buffer.alloc(size * size * 3, 128), format: 'raw' };
    await this.scoreDecoded(blank, 'object', { mode: 'templated' }, 0.5, false);
    // The window session too, with placeholder text: its prompts would cost a second text pass.
    if (this.runtime.windowGraph) {
      const placeholder = new Float32Array(this.runtime.dim).fill(1);
      await this.runWinclip(blank, [], { normal: placeholder, abnormal: placeholder }, 0.5);
    }
    this.warmedUp = true;
  }

  /** Normal and abnormal class embeddings for a category and prompt choice (LRU-cached). */
  classEmbeddings(category: string, prompts: PromptChoice, signal?: AbortSignal): Promise<ClassEmbeddings> {
    const set = prompts.mode === 'custom' ? customPromptSet(prompts.normal, prompts.abnormal, category) : buildPromptSet(category);
    const key = promptCacheKey({
      model: this.runtime.graphs.key,
      category,
      mode: prompts.mode,
      normal: set.normal,
      abnormal: set.abnormal,
    });
    return this.prompts.getOrCompute(key, () =>
      this.storedOrComputed(key, async () => {
        const dim = this.runtime.dim;
        const embeds = await this.runtime.encodeTexts([...set.normal, ...set.abnormal], signal);
        return {
          normal: classEmbedding(embeds.subarray(0, set.normal.length * dim), set.normal.length, dim),
          abnormal: classEmbedding(embeds.subarray(set.normal.length * dim), set.abnormal.length, dim),
        };
      }),
    );
  }

  /**
   * WinCLIP's class embeddings (src/winclip/prompting.ts): anomalib's ensemble for templated
   * prompts, the plain mean of the raw prompt embeddings; cached beside ours under its own key.
   */
  winclipClassEmbeddings(category: string, prompts: PromptChoice, signal?: AbortSignal): Promise<ClassEmbeddings> {
    const set = prompts.mode === 'custom' ? customPromptSet(prompts.normal, prompts.abnormal, category) : winclipPromptSet(category);
    const key = promptCacheKey({ model: this.runtime.graphs.key, category, mode: `winclip-${prompts.mode}`, normal: set.normal, abnormal: set.abnormal });
    return this.prompts.getOrCompute(key, () =>
      this.storedOrComputed(key, async () => {
        // The duplicated template gives equal strings: encode each once, count it as often as listed.
        const { texts, indexOf } = distinctPrompts([...set.normal, ...set.abnormal]);
        const embeds = await this.runtime.encodeTexts(texts, signal);
        const dim = this.runtime.dim;
        return {
          normal: meanPromptEmbedding(embeds, indexOf.subarray(0, set.normal.length), dim),
          abnormal: meanPromptEmbedding(embeds, indexOf.subarray(set.normal.length), dim),
        };
      }),
    );
  }

  /**
   * Scores one decoded image: the path shared by the service and the evaluation tool.
   * `scoring.method` picks the method (default ours); `references` (normal images) make
   * WinCLIP few-shot and are refused by ours.
   */
  async scoreDecoded(
    image: DecodedImage,
    category: string,
    prompts: PromptChoice,
    threshold: number,
    branchMaps: boolean,
    signal?: AbortSignal,
    scoring: ScoringChoice = this.scoring,
    references: DecodedImage[] = [],
  ): Promise<{ outcome: ScoreImageOutcome; textMs: number }> {
    if (scoring.method === 'winclip' && prompts.mode === 'learned') {
      throw badRequest('prompts=learned is trained for method=ours; WinCLIP uses its own prompt ensemble');
    }
    if (scoring.method === 'winclip') return this.scoreDecodedWinclip(image, references, category, prompts, threshold, signal);
    if (references.length) throw new RangeError('reference images are only used by method winclip');
    const t0 = performance.now();
    let text: BranchText;
    if (prompts.mode === 'learned') {
      // A learned file brings its branch text and its trained scoring parameters.
      const learned = this.learnedPrompts(prompts.name);
      text = learned.text;
      scoring = { ...scoring, ...applyLearnedScoring(scoring, learned.scoring) };
    } else {
      text = uniformBranchText(await this.classEmbeddings(category, prompts, signal));
    }
    const textMs = performance.now() - t0;
    const r = this.runtime;
    const payload: ScoreImagePayload = {
      image: rgbForWorker(image),
      preprocess: r.preprocess,
      layers: r.graphOptions.denseLayers.length,
      grid: r.grid,
      dim: r.dim,
      text,
      settings: scoring,
      threshold,
      branchMaps,
    };
    const outcome = await r.pool.runTask<ScoreImageOutcome>('score-image', payload, [], signal);
    return { outcome, textMs };
  }

  /** WinCLIP (anomalib) on one decoded image; WinCLIP+ when normal reference images are given. */
  async scoreDecodedWinclip(
    image: DecodedImage,
    references: DecodedImage[],
    category: string,
    prompts: PromptChoice,
    threshold: number,
    signal?: AbortSignal,
  ): Promise<{ outcome: WinclipOutcome; textMs: number }> {
    if (!this.runtime.windowGraph) throw badRequest('method=winclip is turned off on this server (WINCLIP=0)');
    const t0 = performance.now();
    const text = await this.winclipClassEmbeddings(category, prompts, signal);
    const textMs = performance.now() - t0;
    return { outcome: await this.runWinclip(image, references, text, threshold, signal), textMs };
  }

  /** The window graph and WinCLIP's scoring in a worker for one image and its references. */
  private async runWinclip(image: DecodedImage, references: DecodedImage[], text: ClassEmbeddings, threshold: number, signal?: AbortSignal): Promise<WinclipOutcome> {
    const r = this.runtime;
    const windows = r.windowGraph!;
    // The query and its references in one batch: one session run for all of them.
    const payload: WinclipPayload = {
      images: [image, ...references].map(rgbForWorker),
      preprocess: { ...r.preprocess, size: windows.options.imageSize },
      grid: r.grid,
      dim: r.dim,
      width: r.config.vision.width,
      windowSizes: windows.options.windowSizes,
      text,
      temperature: WINCLIP_TEMPERATURE,
      threshold,
    };
    return r.pool.runTask<WinclipOutcome>(WINCLIP_TASK_NAME, payload, [], signal);
  }

  async detect(bytes: Buffer, options: DetectOptions, signal?: AbortSignal): Promise<DetectResponse> {
    const started = performance.now();
    const method = options.method ?? 'ours';
    if (options.references?.length && method !== 'winclip') throw badRequest('reference images are only used with method=winclip');
    const limits = { maxPixels: this.maxPixels, maxSide: this.maxSide };
    const image = await decodeImage(bytes, limits);
    const references = await Promise.all((options.references ?? []).map((b, i) => decodeReference(b, i, limits)));
    const decodeMs = performance.now() - started;
    const wantBranchMaps = options.branches && options.map !== 'none';
    const { outcome, textMs } = await this.scoreDecoded(
      image,
      options.category,
      options.prompts,
      options.threshold,
      wantBranchMaps,
      signal,
      { ...this.scoring, method },
      references,
    );

    const t = performance.now();
    const map = await this.renderMap(options.map, image, outcome.map, outcome.grid.fused);
    let branches: DetectResponse['branches'];
    if (options.branches && outcome.branchImageScores) {
      const s = outcome.branchImageScores;
      const m = outcome.branchMaps;
      const g = outcome.grid;
      branches = {
        full: { score: s.full, map: await this.renderMap(options.map, image, m?.full, g.full) },
        high: { score: s.high, map: await this.renderMap(options.map, image, m?.high, g.high) },
        low: { score: s.low, map: await this.renderMap(options.map, image, m?.low, g.low) },
      };
    }
    const renderMs = performance.now() - t;

    const isAnomalous = outcome.score >= options.threshold;
    const generated = Boolean(this.runtime.generated);
    const regions = outcome.regions.map((r) => ({ bbox: r.bbox, areaFraction: r.areaFraction, peak: r.peak, meanScore: r.meanScore }));
    const response: DetectResponse = {
      category: options.category,
      method,
      score: outcome.score,
      isAnomalous,
      threshold: options.threshold,
      regions,
      summary: summarize({
        category: options.category,
        score: outcome.score,
        threshold: options.threshold,
        isAnomalous,
        regions: outcome.regions,
        width: image.width,
        height: image.height,
      }),
      image: { width: image.width, height: image.height },
      map,
      model: { id: this.runtime.modelId, generatedRandomModel: generated, ...(generated ? { warning: RANDOM_MODEL_WARNING } : {}) },
      timingsMs: {
        decode: round(decodeMs),
        encode: round(textMs + outcome.encodeMs),
        score: round(outcome.scoreMs),
        render: round(renderMs),
        total: round(performance.now() - started),
      },
    };
    if (branches) response.branches = branches;
    return response;
  }

  private async renderMap(kind: MapKind, image: DecodedImage, full: Float32Array | undefined, grid: Float32Array | undefined): Promise<MapPayload | null> {
    if (kind === 'none') return null;
    if (kind === 'grid') {
      if (!grid) return null;
      const g = this.runtime.grid;
      return { type: 'grid', width: g, height: g, values: Array.from(grid, (v) => Math.round(v * 1e6) / 1e6) };
    }
    if (!full) return null;
    const png = kind === 'png' ? await renderHeatmapPng(full, image.width, image.height) : await renderOverlayPng(image, full, image.width, image.height);
    return { type: kind, width: image.width, height: image.height, encoding: 'base64', mime: 'image/png', data: png.toString('base64') };
  }

  close(): Promise<void> {
    return this.runtime.close();
  }
}

/** decodeImage for a reference image, its errors naming which reference failed. */
async function decodeReference(bytes: Buffer, index: number, limits: { maxPixels?: number; maxSide?: number }): Promise<DecodedImage> {
  try {
    return await decodeImage(bytes, limits);
  } catch (err) {
    const what = `reference ${index + 1}: `;
    if (err instanceof ImageDecodeError) throw new ImageDecodeError(what + err.message, { cause: err });
    if (err instanceof ImageTooLargeError) throw new ImageTooLargeError(what + err.message, { cause: err });
    throw err;
  }
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}

/** Loads the model named by the settings, starts the workers and warms them up. */
export async function createClipDetector(settings: Settings, log: (msg: string) => void = () => {}): Promise<ClipDetector> {
  const runtime = await ClipRuntime.load({
    ...runtimeOptionsFromSettings(settings, log),
    taskModules: settings.winclip ? [SCORING_TASK, WINCLIP_TASK] : [SCORING_TASK],
  });
  try {
    const store = settings.textEmbeddingStore ? new EmbeddingStore(join(settings.cacheDir, 'text-embeddings'), 10_000, log) : undefined;
    const detector = new ClipDetector(runtime, defaultScoringSettings, settings.promptCacheSize, settings.maxPixels, settings.maxSide, store);
    detector.learned = LearnedPromptsRegistry.load(settings.promptsDir, checkpointIdentity(runtime), log);
    await detector.warmUp();
    return detector;
  } catch (err) {
    await runtime.close();
    throw err;
  }
}

/**
 * The image as posted to a worker. Posting copies the whole ArrayBuffer behind a view, so a
 * Buffer that is a slice of a larger one is copied to its own first. The image keeps its
 * pixels (rendering needs them after scoring), so nothing is transferred.
 */
function rgbForWorker(image: RgbImage): RgbImage {
  const { rgb, width, height } = image;
  const own = rgb.byteOffset === 0 && rgb.byteLength === rgb.buffer.byteLength;
  return { width, height, rgb: own ? rgb : new Uint8Array(rgb) };
}
