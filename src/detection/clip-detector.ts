// The detector: decode → class text embeddings (cached) → image tower + scoring in a worker
// → rendering. One instance per loaded model; the HTTP layer and the evaluation tool both
// call detect-style functions from here, so there is one scoring path.
import type { Settings } from '../settings.ts';
import { ClipRuntime } from '../clip/runtime.ts';
import { decodeImage, toPixelValues, type DecodedImage } from '../clip/preprocess.ts';
import { buildPromptSet, classEmbedding, customPromptSet } from '../prompts/ensemble.ts';
import { EmbeddingCache, promptCacheKey, type ClassEmbeddings } from '../prompts/embedding-cache.ts';
import { uniformBranchText } from '../scoring/branches.ts';
import { defaultScoringSettings, type ScoringSettings } from '../scoring/pipeline.ts';
import type { ScoreImageOutcome, ScoreImagePayload } from '../scoring/worker-task.ts';
import { summarize } from '../scoring/summary.ts';
import { renderHeatmapPng, renderOverlayPng } from '../render/heatmap.ts';
import type { DetectOptions, DetectResponse, Detector, MapKind, MapPayload, ModelInfo, PromptChoice } from './types.ts';

const SCORING_TASK = new URL('../scoring/worker-task.ts', import.meta.url).href;

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

  constructor(
    readonly runtime: ClipRuntime,
    readonly scoring: ScoringSettings = defaultScoringSettings,
    promptCacheSize = 256,
    private readonly maxPixels?: number,
  ) {
    this.prompts = new EmbeddingCache({ capacity: promptCacheSize });
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
      promptModes: ['templated', 'custom'],
    };
  }

  /** Runs every stage once so the first real request does not pay for lazy initialisation. */
  async warmUp(): Promise<void> {
    await this.classEmbeddings('object', { mode: 'templated' });
    const size = this.runtime.graphOptions.imageSize;
    const blank: DecodedImage = { width: size, height: size, rgb: Buffer.alloc(size * size * 3, 128), format: 'raw' };
    await this.scoreDecoded(blank, 'object', { mode: 'templated' }, 0.5, false);
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
    return this.prompts.getOrCompute(key, async () => {
      const dim = this.runtime.dim;
      const embeds = await this.runtime.encodeTexts([...set.normal, ...set.abnormal], signal);
      return {
        normal: classEmbedding(embeds.subarray(0, set.normal.length * dim), set.normal.length, dim),
        abnormal: classEmbedding(embeds.subarray(set.normal.length * dim), set.abnormal.length, dim),
      };
    });
  }

  /** Scores one decoded image: the path shared by the service and the evaluation tool. */
  async scoreDecoded(
    image: DecodedImage,
    category: string,
    prompts: PromptChoice,
    threshold: number,
    branchMaps: boolean,
    signal?: AbortSignal,
    scoring: ScoringSettings = this.scoring,
  ): Promise<{ outcome: ScoreImageOutcome; textMs: number }> {
    const t0 = performance.now();
    const text = await this.classEmbeddings(category, prompts, signal);
    const textMs = performance.now() - t0;
    const r = this.runtime;
    const pixels = await toPixelValues([image], r.preprocess);
    const payload: ScoreImagePayload = {
      pixels,
      inputSize: r.graphOptions.imageSize,
      layers: r.graphOptions.denseLayers.length,
      grid: r.grid,
      dim: r.dim,
      text: uniformBranchText(text),
      width: image.width,
      height: image.height,
      settings: scoring,
      threshold,
      branchMaps,
    };
    const outcome = await r.pool.runTask<ScoreImageOutcome>('score-image', payload, [pixels.buffer as ArrayBuffer], signal);
    return { outcome, textMs };
  }

  async detect(bytes: Buffer, options: DetectOptions, signal?: AbortSignal): Promise<DetectResponse> {
    const started = performance.now();
    const image = await decodeImage(bytes, { maxPixels: this.maxPixels });
    const decodeMs = performance.now() - started;
    const wantBranchMaps = options.branches && options.map !== 'none';
    const { outcome, textMs } = await this.scoreDecoded(image, options.category, options.prompts, options.threshold, wantBranchMaps, signal);

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

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}

/** Loads the model named by the settings, starts the workers and warms them up. */
export async function createClipDetector(settings: Settings, log: (msg: string) => void = () => {}): Promise<ClipDetector> {
  const runtime = await ClipRuntime.load({
    model: settings.model,
    cacheDir: settings.cacheDir,
    offline: settings.offline,
    hubEndpoint: settings.hubEndpoint,
    hubToken: settings.hubToken,
    imageSize: settings.imageSize,
    denseLayers: settings.denseLayers,
    denseStart: settings.denseStart,
    denseAttention: settings.denseAttention,
    workers: settings.workers,
    intraOpThreads: settings.intraOpThreads,
    maxQueue: settings.maxQueue,
    jobTimeoutMs: settings.jobTimeoutMs,
    taskModules: [SCORING_TASK],
    log,
  });
  try {
    const detector = new ClipDetector(runtime, defaultScoringSettings, settings.promptCacheSize, settings.maxPixels);
    await detector.warmUp();
    return detector;
  } catch (err) {
    await runtime.close();
    throw err;
  }
}
