// The CLIP runtime: from a model setting to running workers. Resolves the checkpoint (Hub
// cache or local folder), builds or reuses the ONNX graphs, loads the tokenizer and
// preprocessing config, and starts the worker pool that runs both towers.
import { availableParallelism } from 'node:os';
import { readFileSync, existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { Settings } from '../../settings.ts';
import type { ClipConfig, DenseAttention, ImageGraphOptions } from '../types.ts';
import { resolveCheckpoint } from '../checkpoint/resolve.ts';
import { readClipConfig, type GeneratedModelInfo } from '../config.ts';
import { findWeightFile, loadClipWeights } from '../weights/clip-weights.ts';
import { ensureGraphs, ensureWindowGraph, type BuiltGraphs, type BuiltWindowGraph } from '../onnx/graph-cache.ts';
import { DEFAULT_WINDOW_SIZES, type WindowGraphOptions } from '../../methods/winclip/window-graph.ts';
import { loadClipTokenizer, trimToPooling, type ClipTokenizer } from '../input/tokenizer.ts';
import { readPreprocessorConfig, type PreprocessConfig } from '../input/preprocess.ts';
import { WorkerPool } from './worker-pool.ts';
import { defaultDenseLayers, defaultDenseStart } from '../onnx/dense-defaults.ts';

export interface ClipRuntimeOptions {
  model: string;
  cacheDir: string;
  offline: boolean;
  hubEndpoint?: string;
  hubToken?: string;
  imageSize?: number;
  denseLayers?: number[];
  denseStart?: number;
  denseAttention: DenseAttention;
  workers: number;
  intraOpThreads?: number;
  maxQueue: number;
  jobTimeoutMs: number;
  /** Task modules (file URLs) that run inside the workers, next to the sessions. */
  taskModules?: string[];
  /** Also build and open the WinCLIP window graph (model `winclip` in the workers). */
  winclip?: boolean;
  log?: (message: string) => void;
}

/** The runtime options the service's settings give; callers add or override the rest. */
export function runtimeOptionsFromSettings(settings: Settings, log?: (message: string) => void): ClipRuntimeOptions {
  return {
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
    winclip: settings.winclip,
    log,
  };
}

export interface RuntimeTimings {
  resolveMs: number;
  graphMs: number;
  graphsBuilt: boolean;
  sessionsMs: number;
}

/** Texts per text-tower run: large enough to amortise a run, small enough to bound memory. */
const TEXT_BATCH = 64;

export class ClipRuntime {
  private constructor(
    readonly modelId: string,
    readonly source: 'local' | 'hub',
    readonly folder: string,
    readonly config: ClipConfig,
    readonly generated: GeneratedModelInfo | undefined,
    readonly graphOptions: ImageGraphOptions,
    readonly graphs: BuiltGraphs,
    readonly preprocess: PreprocessConfig,
    readonly tokenizer: ClipTokenizer,
    readonly pool: WorkerPool,
    readonly timings: RuntimeTimings,
    /** The WinCLIP window graph, when `winclip` was asked for. */
    readonly windowGraph?: { options: WindowGraphOptions; graph: BuiltWindowGraph },
  ) {}

  static async load(opts: ClipRuntimeOptions): Promise<ClipRuntime> {
    const log = opts.log ?? (() => {});
    let t = performance.now();
    const checkpoint = await resolveCheckpoint(opts.model, {
      cacheDir: opts.cacheDir,
      offline: opts.offline,
      endpoint: opts.hubEndpoint,
      token: opts.hubToken,
      log,
    });
    const resolveMs = performance.now() - t;
    const folder = checkpoint.folder;
    const layout = basename(findWeightFile(folder)).startsWith('open_clip') ? 'open_clip' : 'hf';
    const { config, generated } = readClipConfig(folder, layout);

    const preprocessFile = join(folder, 'preprocessor_config.json');
    const preprocessJson = existsSync(preprocessFile) ? JSON.parse(readFileSync(preprocessFile, 'utf8')) : {};
    const preprocess = readPreprocessorConfig(preprocessJson);
    const imageSize = opts.imageSize ?? config.vision.imageSize;
    preprocess.size = imageSize;

    const layers = config.vision.layers;
    const graphOptions: ImageGraphOptions = {
      imageSize,
      denseLayers: opts.denseLayers ?? defaultDenseLayers(layers),
      denseStart: opts.denseStart ?? defaultDenseStart(layers),
      denseAttention: opts.denseAttention,
    };
    t = performance.now();
    // Read the weights at most once, whichever graphs need building.
    let weights: ReturnType<typeof loadClipWeights> | undefined;
    const loadWeights = async () => (await (weights ??= loadClipWeights(folder))).weights;
    const graphs = await ensureGraphs(folder, opts.cacheDir, graphOptions, async () => {
      log(`building ONNX graphs for ${opts.model} (first start with these settings)`);
      return loadWeights();
    });
    let windowGraph: ClipRuntime['windowGraph'];
    if (opts.winclip) {
      const options: WindowGraphOptions = { imageSize, windowSizes: [...DEFAULT_WINDOW_SIZES] };
      const graph = await ensureWindowGraph(folder, opts.cacheDir, options, async () => {
        log(`building the WinCLIP window graph for ${opts.model}`);
        return loadWeights();
      });
      windowGraph = { options, graph };
    }
    weights = undefined;
    const graphMs = performance.now() - t;
    const tokenizer = await loadClipTokenizer(folder);

    t = performance.now();
    const workers = opts.workers;
    const pool = await WorkerPool.start({
      models: { text: graphs.textPath, image: graphs.imagePath, ...(windowGraph ? { winclip: windowGraph.graph.path } : {}) },
      taskModules: opts.taskModules,
      size: workers,
      intraOpThreads: opts.intraOpThreads ?? Math.max(1, Math.floor(availableParallelism() / workers)),
      maxQueue: opts.maxQueue,
      jobTimeoutMs: opts.jobTimeoutMs,
    });
    const sessionsMs = performance.now() - t;
    const modelId = checkpoint.source === 'hub' ? (checkpoint.repo ?? opts.model) : opts.model;
    return new ClipRuntime(modelId, checkpoint.source, folder, config, generated, graphOptions, graphs, preprocess, tokenizer, pool, {
      resolveMs,
      graphMs,
      graphsBuilt: graphs.built || Boolean(windowGraph?.graph.built),
      sessionsMs,
    }, windowGraph);
  }

  get grid(): number {
    return this.graphOptions.imageSize / this.config.vision.patchSize;
  }

  get dim(): number {
    return this.config.projectionDim;
  }

  /** Text embeddings [texts.length, dim] (unnormalised), in batches through the workers. */
  async encodeTexts(texts: string[], signal?: AbortSignal): Promise<Float32Array> {
    const out = new Float32Array(texts.length * this.dim);
    for (let start = 0; start < texts.length; start += TEXT_BATCH) {
      const chunk = texts.slice(start, start + TEXT_BATCH);
      const { ids, length } = trimToPooling(this.tokenizer.encode(chunk), chunk.length);
      const result = await this.pool.infer('text', { input_ids: { type: 'int64', data: ids, dims: [chunk.length, length] } }, signal);
      out.set(result.text_embeds.data, start * this.dim);
    }
    return out;
  }

  /** Image embeddings [B, dim] and dense features [B, L, N, dim] for NCHW pixels. */
  async encodeImages(pixels: Float32Array, batch: number, signal?: AbortSignal): Promise<{ imageEmbeds: Float32Array; dense: Float32Array }> {
    const S = this.graphOptions.imageSize;
    const result = await this.pool.infer('image', { pixel_values: { type: 'float32', data: pixels, dims: [batch, 3, S, S] } }, signal);
    return { imageEmbeds: result.image_embeds.data, dense: result.dense_features.data };
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}
