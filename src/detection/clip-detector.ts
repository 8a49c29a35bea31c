// The detector: decode → method → render → response. One instance per loaded model; the HTTP
// route, the evaluation and the tools all score through `scoreDecoded`, so there is one
// scoring path. What a method does lives in its folder under src/methods.
import { join } from 'node:path';
import type { Settings } from '../settings.ts';
import { DEFAULT_MAX_REQUEST_PIXELS, TEXT_EMBEDDING_FILES } from '../defaults.ts';
import { badRequest, ImageDecodeError, ImageTooLargeError } from '../errors.ts';
import { ClipRuntime } from '../clip/runtime/runtime.ts';
import { checkTotalPixels, decodeImage, type DecodedImage, type DecodeOptions } from '../imaging/decode.ts';
import { EmbeddingCache } from '../prompts/embedding-cache.ts';
import { buildPromptSet, customPromptSet } from '../prompts/ensemble.ts';
import { EmbeddingStore } from '../prompts/embedding-store.ts';
import { TextEmbeddings, type SharedTextTable } from '../prompts/text-embeddings.ts';
import { checkpointIdentity, LearnedPromptsRegistry, weightsFingerprint } from '../methods/dense-frequency/learned-prompts.ts';
import { GRAPH_FORMAT_VERSION } from '../clip/onnx/graph-cache.ts';
import { defaultFewShotSettings, type FewShotSettings, type MethodContext, type MethodOutcome, type MethodRequest, type MethodRunner, type ScoringMethod } from '../methods/contract.ts';
import { DEFAULT_METHOD, MethodRegistry } from '../methods/registry.ts';
import { runtimeOptionsFromSettings } from './runtime-options.ts';
import { buildResponse, renderMaps, renderOnThisThread, roundMs, type MapRenderer } from './response.ts';
import { RENDER_TASK, RENDER_TASK_MODULE } from './render-task.ts';
import type { Admission, BatchResult, DetectOptions, DetectResponse, Detector, ModelInfo } from './types.ts';
import { detectBatch } from './batch.ts';

/** One image to score through a named method (the default method when none is named). */
export interface ScoreRequest extends Omit<MethodRequest, 'references' | 'partMaps'> {
  method?: string;
  references?: readonly DecodedImage[];
  partMaps?: boolean;
}

export interface DetectorOptions {
  /** Every method the server knows (offered or switched off), by name and alias. */
  registry?: MethodRegistry;
  /** Names of the methods this detector serves (default: all in the registry). */
  offered?: readonly string[];
  promptCacheSize?: number;
  maxPixels?: number;
  maxSide?: number;
  /** Convert embedded ICC profiles to sRGB (decode.ts DecodeOptions). */
  iccConvert?: boolean;
  /** The image and its references together (MAX_REQUEST_PIXELS); default 100 M. */
  maxRequestPixels?: number;
  /** Class embeddings on disk, under the LRU: they survive restarts. */
  textStore?: EmbeddingStore;
  /** How stored normal references are used. */
  fewShot?: FewShotSettings;
  /** Where PNG maps are drawn (default: this thread); createClipDetector uses the workers. */
  render?: MapRenderer;
  /** The store's text embedding table, shared by the replicas (text-embeddings.ts). */
  sharedText?: SharedTextTable;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

/**
 * The checkpoint as the shared text embedding table names it: the weights' content, the graph
 * options and the graph format, the same on every machine; undefined when the weights cannot
 * be fingerprinted (nothing is shared then).
 */
export function sharedTextCheckpoint(runtime: ClipRuntime): string | undefined {
  try {
    return `${weightsFingerprint(runtime.folder)}:${JSON.stringify(runtime.graphOptions)}:g${GRAPH_FORMAT_VERSION}`;
  } catch {
    return undefined;
  }
}

export class ClipDetector implements Detector {
  private warmedUp = false;
  readonly registry: MethodRegistry;
  readonly text: TextEmbeddings;
  /** Learned prompt files (PROMPTS_DIR, loaded by createClipDetector); the evaluation may add one. */
  learned = new LearnedPromptsRegistry();
  private readonly runners = new Map<string, MethodRunner>();

  constructor(
    readonly runtime: ClipRuntime,
    private readonly options: DetectorOptions = {},
  ) {
    this.registry = options.registry ?? new MethodRegistry();
    const checkpoint = options.sharedText ? sharedTextCheckpoint(runtime) : undefined;
    const shared = options.sharedText && checkpoint ? { table: options.sharedText, checkpoint, localModel: runtime.graphs.key, log: options.log } : undefined;
    this.text = new TextEmbeddings(new EmbeddingCache({ capacity: options.promptCacheSize }), runtime.dim, options.textStore, shared);
    const offered = options.offered ?? this.registry.names();
    // `learned` is read when a request needs it: the registry may be replaced after start-up.
    const self = this;
    const fewShot = options.fewShot ?? defaultFewShotSettings;
    const ctx: MethodContext = { runtime, text: this.text, fewShot, get learned() { return self.learned; } };
    for (const m of this.registry.all()) if (offered.includes(m.name)) this.runners.set(m.name, m.open(ctx));
  }

  private modelKey?: string;

  /**
   * What a method's scores depend on beyond the image, its prompts and its references: the
   * weights' content, the graph options (precision included), the graph format and the few-shot
   * settings. A category's calibration holds for the scores of this key only.
   */
  scoringKey(method: string): string {
    this.modelKey ??= sharedTextCheckpoint(this.runtime) ?? `${this.runtime.graphs.key}`;
    const fewShot = this.options.fewShot ?? defaultFewShotSettings;
    return `${this.registry.get(method).name}:${this.modelKey}:fewShot=${fewShot.weight}/${fewShot.augment}`;
  }

  /** The class-embedding LRU (metrics read it). */
  get prompts(): EmbeddingCache {
    return this.text.cache;
  }

  get ready(): boolean {
    return this.warmedUp;
  }

  /** Names of the methods served, in registry order. */
  methods(): string[] {
    return this.registry.names().filter((n) => this.runners.has(n));
  }

  info(): ModelInfo {
    const r = this.runtime;
    const modes = new Set(this.methods().flatMap((n) => this.registry.get(n).promptModes));
    if (!this.learned.size) modes.delete('learned');
    return {
      id: r.modelId,
      source: r.source,
      generatedRandomModel: Boolean(r.generated),
      inputSize: r.graphOptions.imageSize,
      grid: r.grid,
      denseLayers: r.graphOptions.denseLayers,
      denseStart: r.graphOptions.denseStart,
      denseAttention: r.graphOptions.denseAttention,
      precision: r.precision,
      projectionDim: r.dim,
      promptModes: ['templated', 'custom', 'learned'].filter((m) => modes.has(m as never)),
      methods: this.methods(),
      learnedPrompts: { folder: this.learned.folder, available: this.learned.summaries(), refused: this.learned.refused() },
    };
  }

  /** The method a request names (default: DEFAULT_METHOD), served here or a 400 saying why not. */
  method(name: string = DEFAULT_METHOD): { method: ScoringMethod; runner: MethodRunner } {
    const method = this.registry.get(name);
    const runner = this.runners.get(method.name);
    if (!runner) {
      const why = method.switchedOffBy ? ` (${method.switchedOffBy})` : '';
      throw badRequest(`method=${method.name} is turned off on this server${why}`);
    }
    return { method, runner };
  }

  /** Runs every served method once so the first real request does not pay for lazy initialisation. */
  async warmUp(): Promise<void> {
    for (const runner of this.runners.values()) await runner.warmUp();
    this.roomForCategory(); // ~70 ms of tokenizing the templates once, not in the first request
    this.warmedUp = true;
  }

  /** Scores one decoded image: the path shared by the service, the evaluation and the tools. */
  async scoreDecoded(req: ScoreRequest): Promise<{ outcome: MethodOutcome; textMs: number; method: string }> {
    const { method, runner } = this.method(req.method);
    const references = req.references ?? [];
    method.validate({ prompts: req.prompts, branches: Boolean(req.partMaps), references: references.length });
    const { textMs, ...outcome } = await runner.score({ ...req, references, partMaps: Boolean(req.partMaps) });
    return { outcome, textMs, method: method.name };
  }

  /**
   * Several decoded images of one category through the method's batch entry point (MuSc scores
   * them against each other; dense-frequency packs them into batched session runs), answers in
   * order; a method without one scores them one by one, at most `capacity` at a time. The path
   * the evaluation and folder scoring share with POST /v1/detect/batch (batch.ts).
   */
  async scoreDecodedBatch(requests: readonly ScoreRequest[], name?: string): Promise<Array<{ outcome: MethodOutcome; textMs: number }>> {
    const { method, runner } = this.method(name ?? requests[0]?.method);
    const full = requests.map((req) => {
      const references = req.references ?? [];
      method.validate({ prompts: req.prompts, branches: Boolean(req.partMaps), references: references.length });
      return { ...req, references, partMaps: Boolean(req.partMaps) };
    });
    if (runner.scoreBatch) {
      return (await runner.scoreBatch(full)).map(({ textMs, ...outcome }) => ({ outcome, textMs }));
    }
    const out = new Array<{ outcome: MethodOutcome; textMs: number }>(full.length);
    let next = 0;
    const lane = async () => {
      while (next < full.length) {
        const i = next++;
        const { textMs, ...outcome } = await runner.score(full[i]);
        out[i] = { outcome, textMs };
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(this.capacity, full.length)) }, lane));
    return out;
  }

  async detect(bytes: Buffer, options: DetectOptions, signal?: AbortSignal): Promise<DetectResponse> {
    const started = performance.now();
    // The method's rules come first: a request it refuses costs no decoding.
    const { method } = this.method(options.method);
    method.validate({ prompts: options.prompts, branches: options.branches, references: options.references?.length ?? 0 });
    this.checkPromptLengths(options);
    const limits = { maxPixels: this.options.maxPixels, maxSide: this.options.maxSide, iccConvert: this.options.iccConvert };
    // Every header first: a request whose images are too large together costs no decoding.
    await checkTotalPixels([bytes, ...(options.references ?? [])], this.options.maxRequestPixels ?? DEFAULT_MAX_REQUEST_PIXELS, limits);
    const image = await this.decode(bytes);
    const references = await Promise.all((options.references ?? []).map((b, i) => decodeReference(b, i, limits)));
    const decodeMs = performance.now() - started;
    const { outcome, textMs } = await this.scoreDecoded({
      image,
      references,
      category: options.category,
      prompts: options.prompts,
      threshold: options.regionThreshold ?? options.threshold,
      partMaps: options.branches && options.map !== 'none',
      signal,
      method: method.name,
      memory: options.memory,
    });
    return this.respond(image, outcome, options, { started, decodeMs, textMs, method: method.name });
  }

  /**
   * Decodes an upload with the detector's pixel and side limits. The pixels are put in shared
   * memory: the scoring task and the render task in the workers read them without a copy
   * (sharp's own buffers cannot be moved between threads, only copied).
   */
  async decode(bytes: Buffer): Promise<DecodedImage> {
    const image = await decodeImage(bytes, { maxPixels: this.options.maxPixels, maxSide: this.options.maxSide, iccConvert: this.options.iccConvert });
    return { ...image, rgb: sharedCopy(image.rgb) };
  }

  /**
   * A method's outcome for a decoded image as the API's answer: maps rendered, verdict, summary,
   * timings. The outcome's image-size maps are moved to the renderer (not to be read afterwards).
   */
  async respond(
    image: DecodedImage,
    outcome: MethodOutcome,
    options: DetectOptions,
    t: { started: number; decodeMs: number; textMs: number; method: string },
  ): Promise<DetectResponse> {
    const t0 = performance.now();
    const grid = this.runtime.grid;
    // The map's colours and contour use the level its regions were found at, so boxes and contour agree.
    const mapThreshold = options.regionThreshold ?? options.threshold;
    const { map, branches } = await renderMaps(
      options.map,
      image,
      outcome,
      grid,
      { threshold: mapThreshold, regions: outcome.regions },
      options.branches,
      this.options.render ?? renderOnThisThread,
    );
    const renderMs = performance.now() - t0;
    return buildResponse({
      category: options.category,
      method: t.method,
      threshold: options.threshold,
      image,
      outcome,
      map,
      branches,
      model: { id: this.runtime.modelId, generated: Boolean(this.runtime.generated), precision: this.runtime.precision },
      thresholdSource: options.thresholdSource,
      regionThreshold: options.regionThreshold,
      calibrationNotUsed: options.calibrationNotUsed,
      // MuSc's scores rank the images of one batch: the verdict says so, for whoever acts on it.
      batchRelative: this.registry.get(t.method).batchOnly,
      timingsMs: {
        decode: roundMs(t.decodeMs),
        encode: roundMs(t.textMs + outcome.encodeMs),
        score: roundMs(outcome.scoreMs),
        render: roundMs(renderMs),
        total: roundMs(performance.now() - t.started),
      },
    });
  }

  /** Images scored at a time by a batch: one per inference worker. */
  get capacity(): number {
    return this.runtime.pool.size;
  }

  /** Several images of one category (POST /v1/detect/batch): see batch.ts. */
  detectBatch(uploads: readonly Buffer[], options: DetectOptions, signal?: AbortSignal): Promise<BatchResult> {
    return detectBatch(this, uploads, options, signal);
  }

  /** The most tokens a prompt template adds around the category (start and end included), over every templated ensemble. */
  private templateTokens?: number;

  /** Tokens a category may take inside every prompt template. */
  private roomForCategory(): number {
    const { tokenizer } = this.runtime;
    if (this.templateTokens === undefined) {
      const probe = 'x';
      const probeTokens = tokenizer.count(probe) - 2;
      const prompts = [buildPromptSet(probe), buildPromptSet(probe, { winclipParity: true, includeBroken: true })].flatMap((set) => [...set.normal, ...set.abnormal]);
      this.templateTokens = Math.max(...prompts.map((p) => tokenizer.count(p) - probeTokens));
    }
    return tokenizer.contextLength - this.templateTokens;
  }

  /**
   * Prompts longer than the text tower's context (77 tokens for CLIP) would be cut silently:
   * custom phrases, or a category too long for the templates around it. They are refused (400),
   * naming the phrase or category and its token count.
   */
  checkPromptLengths(options: DetectOptions): void {
    // A method that reads no text (MuSc) takes any category.
    if (!this.method(options.method).runner.classEmbeddings) return;
    const { tokenizer } = this.runtime;
    if (options.prompts.mode === 'templated') {
      // A category too long for the templates around it would be cut at the context length
      // without a word, leaving prompts that no longer name it (a long non-Latin name: 3+ tokens a letter).
      const tokens = tokenizer.count(options.category) - 2;
      const room = this.roomForCategory();
      if (tokens > room) {
        const shown = options.category.length > 60 ? `${options.category.slice(0, 60)}…` : options.category;
        throw badRequest(`the category "${shown}" is ${tokens} tokens; inside the prompt templates CLIP reads at most ${room} of them (${tokenizer.contextLength} in all): use a shorter name, or prompts=custom with phrases that fit`);
      }
      return;
    }
    if (options.prompts.mode !== 'custom') return;
    const set = customPromptSet(options.prompts.normal, options.prompts.abnormal, options.category);
    for (const phrase of [...set.normal, ...set.abnormal]) {
      const tokens = tokenizer.count(phrase);
      if (tokens > tokenizer.contextLength) {
        const shown = phrase.length > 60 ? `${phrase.slice(0, 60)}…` : phrase;
        throw badRequest(`the phrase "${shown}" is ${tokens} tokens; CLIP reads at most ${tokenizer.contextLength} (start and end tokens included)`);
      }
    }
  }

  /** Detections admitted and not yet answered (admit()). */
  private admitted = 0;

  /** The inference queue is full: a detection now would get 503. Admitted detections count as queued while they decode. */
  admissionFull(): boolean {
    const pool = this.runtime.pool;
    return pool.full || this.admitted >= pool.capacity;
  }

  admit(): Admission | undefined {
    if (this.admissionFull()) return undefined;
    this.admitted++;
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.admitted--;
      },
    };
  }

  close(): Promise<void> {
    return this.runtime.close();
  }
}

/** The pixels in a SharedArrayBuffer (one copy here, none per worker message afterwards). */
function sharedCopy(rgb: Buffer): Buffer {
  const shared = Buffer.from(new SharedArrayBuffer(rgb.length));
  shared.set(rgb);
  return shared;
}

/**
 * Map rendering as a task in the inference workers. It finishes a detection already admitted
 * and scored, so it goes ahead of queued detections and is never refused for a full queue.
 */
function workerRenderer(runtime: ClipRuntime): MapRenderer {
  return (payload, transfer) => runtime.pool.runTask<string[]>(RENDER_TASK, payload, transfer, undefined, { urgent: true });
}

/** decodeImage for a reference image, its errors naming which reference failed. */
async function decodeReference(bytes: Buffer, index: number, limits: DecodeOptions): Promise<DecodedImage> {
  try {
    return await decodeImage(bytes, limits);
  } catch (err) {
    const what = `reference ${index + 1}: `;
    if (err instanceof ImageDecodeError) throw new ImageDecodeError(what + err.message, { cause: err });
    if (err instanceof ImageTooLargeError) throw new ImageTooLargeError(what + err.message, { cause: err });
    throw err;
  }
}

/** The methods a server with these settings offers: every registered one the settings leave on. */
export function offeredMethods(settings: Settings, registry: MethodRegistry): string[] {
  const off: Record<string, boolean> = { winclip: !settings.winclip, musc: !settings.musc };
  return registry.names().filter((name) => !off[name]);
}

/** Loads the model named by the settings with the graphs and tasks of the methods offered, starts the workers and warms them up. */
export async function createClipDetector(
  settings: Settings,
  /** Start-up and cache messages; `fields` (path, code, level) for a structured log line. */
  log: (msg: string, fields?: Record<string, unknown>) => void = () => {},
  registry: MethodRegistry = new MethodRegistry(),
  /** The store's text embedding table, shared by the replicas. */
  sharedText?: SharedTextTable,
): Promise<ClipDetector> {
  const offered = offeredMethods(settings, registry);
  const methods = registry.all().filter((m) => offered.includes(m.name));
  const runtime = await ClipRuntime.load({
    ...runtimeOptionsFromSettings(settings, log),
    taskModules: [RENDER_TASK_MODULE, ...methods.flatMap((m) => m.taskModules)],
    graphs: (ctx) => methods.flatMap((m) => m.graphs?.(ctx) ?? []),
  });
  try {
    const textStore = settings.textEmbeddingStore ? new EmbeddingStore(join(settings.cacheDir, 'text-embeddings'), TEXT_EMBEDDING_FILES, log) : undefined;
    const detector = new ClipDetector(runtime, {
      registry,
      offered,
      promptCacheSize: settings.promptCacheSize,
      maxPixels: settings.maxPixels,
      maxSide: settings.maxSide,
      iccConvert: settings.iccConvert,
      maxRequestPixels: settings.maxRequestPixels,
      textStore,
      fewShot: { weight: settings.fewShotWeight, augment: settings.referenceAugment },
      render: workerRenderer(runtime),
      sharedText,
      log,
    });
    detector.learned = LearnedPromptsRegistry.load(settings.promptsDir, checkpointIdentity(runtime), log);
    await detector.warmUp();
    return detector;
  } catch (err) {
    await runtime.close();
    throw err;
  }
}
