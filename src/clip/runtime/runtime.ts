// The CLIP runtime: from a model setting to running workers. Resolves the checkpoint (Hub
// cache or local folder), builds or reuses the ONNX graphs (the two towers, plus any graph a
// scoring method asks for), loads the tokenizer and preprocessing config, and starts the
// worker pool that runs them. It knows no method: methods hand it graph specs and task modules.
import { availableParallelism } from 'node:os';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { ClipConfig, DenseAttention, ImageGraphOptions } from '../types.ts';
import { resolveCheckpoint, type ResolvedCheckpoint } from '../checkpoint/resolve.ts';
import { OPEN_CLIP_CONFIG_FILE, readClipConfig, type GeneratedModelInfo } from '../config.ts';
import { loadClipWeights } from '../weights/clip-weights.ts';
import { ensureGraph, ensureGraphs, type BuiltGraph, type BuiltGraphs, type GraphSpec } from '../onnx/graph-cache.ts';
import { loadClipTokenizer, trimToPooling, type ClipTokenizer } from '../input/tokenizer.ts';
import { applyOpenClipPreprocess, readPreprocessorConfig, type PreprocessConfig } from '../input/preprocess.ts';
import { WorkerPool } from './worker-pool.ts';
import { assertExecutionProvider, type ExecutionProvider } from './execution-provider.ts';
import { defaultDenseLayers, defaultDenseStart } from '../onnx/dense-defaults.ts';
import type { Precision } from '../onnx/quantize.ts';
import { resolveWeightFormat, type WeightSetting } from '../onnx/int8-kernel.ts';

/** What a method's graph spec may depend on: known once the checkpoint is read. */
export interface GraphContext {
  config: ClipConfig;
  imageSize: number;
}

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
  /** 'int8': int8 image, text and method graphs (onnx/quantize.ts); default fp32. */
  precision?: Precision;
  /** int8 weight storage (onnx/int8-kernel.ts): 'auto' (default: 's8' with VNNI, else 'u8'), 'u8', 's8' or 's7'. */
  int8Weights?: WeightSetting;
  workers: number;
  intraOpThreads?: number;
  /** Where the sessions run (EXECUTION_PROVIDER); checked before anything is downloaded or built. */
  executionProvider?: ExecutionProvider;
  /** Whether ORT's intra-op threads spin while waiting for work (default: they sleep). */
  intraOpSpinning?: boolean;
  maxQueue: number;
  jobTimeoutMs: number;
  /** Task modules (file URLs) that run inside the workers, next to the sessions. */
  taskModules?: string[];
  /** Graphs beyond the towers (by the methods served), opened in every worker under their name. */
  graphs?: (ctx: GraphContext) => GraphSpec[];
  log?: (message: string) => void;
}

export interface RuntimeTimings {
  resolveMs: number;
  graphMs: number;
  graphsBuilt: boolean;
  sessionsMs: number;
}

/** A method graph as built, with the spec it was built from. */
export interface LoadedGraph {
  spec: GraphSpec;
  graph: BuiltGraph;
}

function precisionOf(options: ImageGraphOptions): Precision {
  return options.precision ?? 'fp32';
}

/** Texts per text-tower run: large enough to amortise a run, small enough to bound memory. */
const TEXT_BATCH = 64;

export class ClipRuntime {
  private constructor(
    readonly modelId: string,
    readonly checkpoint: ResolvedCheckpoint,
    readonly config: ClipConfig,
    readonly generated: GeneratedModelInfo | undefined,
    readonly graphOptions: ImageGraphOptions,
    readonly graphs: BuiltGraphs,
    readonly preprocess: PreprocessConfig,
    readonly tokenizer: ClipTokenizer,
    readonly pool: WorkerPool,
    readonly timings: RuntimeTimings,
    /** The methods' graphs by name (e.g. `winclip`). */
    readonly extraGraphs: Readonly<Record<string, LoadedGraph>>,
  ) {}

  static async load(opts: ClipRuntimeOptions): Promise<ClipRuntime> {
    const log = opts.log ?? (() => {});
    assertExecutionProvider(opts.executionProvider ?? 'cpu');
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
    // The resolver chose the weights file; its name says the layout of the config to read.
    const layout = checkpoint.weightsFile.startsWith('open_clip') ? 'open_clip' : 'hf';
    const { config, generated } = readClipConfig(folder, layout);

    const preprocessFile = join(folder, 'preprocessor_config.json');
    const preprocessJson = existsSync(preprocessFile) ? JSON.parse(readFileSync(preprocessFile, 'utf8')) : {};
    let preprocess = readPreprocessorConfig(preprocessJson);
    const openClipFile = join(folder, OPEN_CLIP_CONFIG_FILE);
    if (layout === 'open_clip' && existsSync(openClipFile)) {
      preprocess = applyOpenClipPreprocess(preprocess, JSON.parse(readFileSync(openClipFile, 'utf8')));
    }
    const imageSize = opts.imageSize ?? config.vision.imageSize;
    preprocess.size = imageSize;

    const layers = config.vision.layers;
    const int8Weights = resolveWeightFormat(opts.int8Weights);
    if (opts.precision === 'int8') log(`int8 weights: ${int8Weights}${opts.int8Weights === 'auto' || opts.int8Weights === undefined ? ' (auto: this CPU)' : ''}`);
    const graphOptions: ImageGraphOptions = {
      imageSize,
      denseLayers: opts.denseLayers ?? defaultDenseLayers(layers),
      denseStart: opts.denseStart ?? defaultDenseStart(layers),
      denseAttention: opts.denseAttention,
      // Only when it matters, so the graph key of native-size graphs does not depend on it.
      ...(imageSize !== config.vision.imageSize && layout === 'open_clip' ? { positionResize: 'open_clip' as const } : {}),
      ...(opts.precision === 'int8' ? { precision: 'int8' as const } : {}),
      ...(opts.precision === 'int8' && int8Weights !== 'u8' ? { int8Weights } : {}),
    };
    t = performance.now();
    // Read the weights at most once, whichever graphs need building.
    let weights: ReturnType<typeof loadClipWeights> | undefined;
    const loadWeights = async () => (await (weights ??= loadClipWeights(folder, checkpoint.weightsFile))).weights;
    const graphs = await ensureGraphs(folder, opts.cacheDir, graphOptions, async () => {
      log(`building ONNX graphs for ${opts.model} (first start with these settings)`);
      return loadWeights();
    }, log);
    const extraGraphs: Record<string, LoadedGraph> = {};
    for (const spec of opts.graphs?.({ config, imageSize }) ?? []) {
      const graph = await ensureGraph(folder, opts.cacheDir, spec, async () => {
        log(`building the ${spec.name} graph for ${opts.model}`);
        return loadWeights();
      }, log, { precision: precisionOf(graphOptions), int8Weights: graphOptions.int8Weights, positionResize: graphOptions.positionResize });
      extraGraphs[spec.name] = { spec, graph };
    }
    weights = undefined;
    const graphMs = performance.now() - t;
    const tokenizer = await loadClipTokenizer(folder);

    t = performance.now();
    if (opts.executionProvider === 'cuda') log('opening the sessions on the CUDA execution provider (device 0)');
    const workers = opts.workers;
    const extraModels = Object.fromEntries(Object.entries(extraGraphs).map(([name, g]) => [name, g.graph.path]));
    const pool = await WorkerPool.start({
      models: { text: graphs.textPath, image: graphs.imagePath, ...extraModels },
      taskModules: opts.taskModules,
      size: workers,
      intraOpThreads: opts.intraOpThreads ?? Math.max(1, Math.floor(availableParallelism() / workers)),
      executionProvider: opts.executionProvider,
      intraOpSpinning: opts.intraOpSpinning ?? false,
      maxQueue: opts.maxQueue,
      jobTimeoutMs: opts.jobTimeoutMs,
    });
    const sessionsMs = performance.now() - t;
    const modelId = checkpoint.source === 'hub' ? (checkpoint.repo ?? opts.model) : opts.model;
    const graphsBuilt = graphs.built || Object.values(extraGraphs).some((g) => g.graph.built);
    return new ClipRuntime(modelId, checkpoint, config, generated, graphOptions, graphs, preprocess, tokenizer, pool, {
      resolveMs,
      graphMs,
      graphsBuilt,
      sessionsMs,
    }, extraGraphs);
  }

  /** The precision the towers (and quantizable method graphs) run in. */
  get precision(): Precision {
    return precisionOf(this.graphOptions);
  }

  get source(): 'local' | 'hub' {
    return this.checkpoint.source;
  }

  get folder(): string {
    return this.checkpoint.folder;
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
