// The contract every scoring method implements. The detector, the evaluation and the HTTP
// route know methods only through it; adding a method means a folder with a module that exports
// one `ScoringMethod`, and one line in registry.ts.
import type { ClipRuntime, GraphContext } from '../clip/runtime/runtime.ts';
import type { GraphSpec } from '../clip/onnx/graph-cache.ts';
import type { DecodedImage } from '../imaging/decode.ts';
import type { PromptChoice } from '../prompts/prompt-choice.ts';
import type { TextEmbeddings } from '../prompts/text-embeddings.ts';
import type { ClassEmbeddings } from '../prompts/embedding-cache.ts';
import type { Region } from '../scoring/regions.ts';
import type { LearnedPromptsRegistry } from './dense-frequency/learned-prompts.ts';

/** What a request asks of a method, before any image is decoded (checked by `validate`). */
export interface MethodOptions {
  prompts: PromptChoice;
  /** Per-part scores and maps asked for (`branches=true`). */
  branches: boolean;
  /** Normal images sent with the request. */
  references: number;
}

/** One image to score. */
export interface MethodRequest {
  image: DecodedImage;
  /** Normal reference images sent with the request (few-shot methods). */
  references: readonly DecodedImage[];
  /** The text put into the prompts. */
  category: string;
  prompts: PromptChoice;
  /** Regions are the map above it. */
  threshold: number;
  /** Also return every part's map at the image size. */
  partMaps: boolean;
  /** Method-specific overrides of its scoring settings (the evaluation's sweeps); unchecked. */
  settings?: unknown;
  /** What the method built from a stored category's references (ReferenceMemory.memory). */
  memory?: unknown;
  signal?: AbortSignal;
}

/**
 * A method's answer for one image. `grid` holds patch-grid maps (`fused` always; named parts
 * such as the frequency branches when the method has them), `map` the fused map at the image
 * size ([height, width], 0–1).
 */
export interface MethodOutcome {
  score: number;
  /** The image-level probability before the map is mixed in. */
  pImage: number;
  map: Float32Array;
  grid: { fused: Float32Array } & Partial<Record<string, Float32Array>>;
  /** With `partMaps`: each part's map at the image size. */
  branchMaps?: Record<string, Float32Array>;
  /** Each part's image score, when the method has parts. */
  branchImageScores?: Record<string, number>;
  regions: Region[];
  /** Image tower time and scoring time (ms). */
  encodeMs: number;
  scoreMs: number;
}

/** What a method gets from the detector it runs in. */
export interface MethodContext {
  runtime: ClipRuntime;
  text: TextEmbeddings;
  /** Learned prompt files (PROMPTS_DIR) for methods that read them. */
  learned: LearnedPromptsRegistry;
  /** How stored normal references are used (settings FEWSHOT_WEIGHT, REFERENCE_AUGMENT). */
  fewShot: FewShotSettings;
}

export interface FewShotSettings {
  /** Weight of the few-shot part in the map and the score, in [0, 1]. */
  weight: number;
  /** Views stored per reference: `none` (as uploaded), `flips` (4), `rotations` (the 8 of the dihedral group). */
  augment: 'none' | 'flips' | 'rotations';
}

export const defaultFewShotSettings: FewShotSettings = { weight: 0.5, augment: 'none' };

/** One reference's stored features as a method packs them (opaque to everything else). */
export interface PackedFeatures {
  shape: unknown;
  data: Buffer;
}

/**
 * How a method keeps and uses a category's stored normal references. `from: 'features'`: the
 * method's `encode` output is stored per reference (bound to `featureKey`) and `memory` builds
 * from the stored records; `from: 'images'`: `memory` gets the stored images, decoded.
 */
export type ReferenceMemory =
  | {
      from: 'features';
      /** What stored features are bound to: checkpoint, graph options, settings. */
      featureKey: string;
      encode(images: readonly DecodedImage[], signal?: AbortSignal): Promise<PackedFeatures[]>;
      /** `key` names the records' content (category and version), for caches downstream. */
      memory(records: readonly PackedFeatures[], key: string): unknown;
    }
  | { from: 'images'; /** At most this many images are used. */ limit: number; memory(images: readonly DecodedImage[]): unknown };

/** A method bound to one loaded model. */
export interface MethodRunner {
  /** Runs every stage once so the first request does not pay for lazy initialisation. */
  warmUp(): Promise<void>;
  /**
   * How the method gets its class text embeddings for templated or custom prompts (cached in the
   * context's TextEmbeddings under its own key); absent for methods that use no text.
   */
  classEmbeddings?(category: string, prompts: Exclude<PromptChoice, { mode: 'learned' }>, signal?: AbortSignal): Promise<ClassEmbeddings>;
  /** Methods that use a category's stored normal references say how; absent: they are ignored. */
  references?: ReferenceMemory;
  score(request: MethodRequest): Promise<MethodOutcome & { textMs: number }>;
  /**
   * Scores several images of one category together, answers in request order. Methods whose
   * scores depend on the batch (MuSc's mutual scoring) need it; others may have it for
   * throughput (dense-frequency: several images per session run, the same results as `score`).
   * Absent: each image goes through `score` on its own.
   */
  scoreBatch?(requests: MethodRequest[]): Promise<Array<MethodOutcome & { textMs: number }>>;
}

export interface ScoringMethod {
  /** The name requests and responses use. */
  readonly name: string;
  /** Other names accepted in requests (answered with `name`). */
  readonly aliases?: readonly string[];
  /** One line for /v1/models and the docs. */
  readonly description: string;
  /**
   * Its scores depend on the other images scored with it (MuSc): it scores batches only, so a
   * set of images (an evaluation category, a scored folder) goes through `scoreBatch` together.
   */
  readonly batchOnly?: boolean;
  /** The setting that turns the method off, named when a request asks for it (e.g. `WINCLIP=0`). */
  readonly switchedOffBy?: string;
  /** Prompt modes the method accepts. */
  readonly promptModes: readonly PromptChoice['mode'][];
  /** Worker task modules (file URLs) registered in every inference worker. */
  readonly taskModules: readonly string[];
  /** Graphs beyond the two towers, built and opened by the runtime. */
  graphs?(ctx: GraphContext): GraphSpec[];
  /** The method's own cross-field rules: the one place they are checked; throws BadRequestError. */
  validate(options: MethodOptions): void;
  /** Binds the method to a loaded model. */
  open(ctx: MethodContext): MethodRunner;
}
