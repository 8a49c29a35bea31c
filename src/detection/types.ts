// What the HTTP layer asks of a detector and what it gets back.
import type { LearnedPromptsSummary, RefusedPrompts } from '../methods/dense-frequency/learned-prompts.ts';
import type { PromptChoice } from '../prompts/prompt-choice.ts';

export type { PromptChoice };

export type MapKind = 'none' | 'grid' | 'png' | 'overlay';

/** A registered scoring method's name (src/methods/registry.ts): `dense-frequency`, `winclip`, … */
export type DetectionMethod = string;

export interface DetectOptions {
  category: string;
  prompts: PromptChoice;
  map: MapKind;
  threshold: number;
  /** The request set `threshold` itself (else a calibration may set it). */
  thresholdGiven?: boolean;
  /** Where `threshold` came from (said in the summary); absent: the caller's own. */
  thresholdSource?: 'request' | 'category calibration' | 'default';
  /** Echoed in the response, stored with the record, sent in webhook events. */
  metadata?: Record<string, string>;
  branches: boolean;
  /** Scoring method (a name or alias); the default method when absent. */
  method?: DetectionMethod;
  /** Encoded normal reference images for few-shot WinCLIP+ (method `winclip` only). */
  references?: Buffer[];
  /** What the method built from a stored category's references (src/categories). */
  memory?: unknown;
  /** Regions are the map above this (a calibrated pixel threshold); default `threshold`. */
  regionThreshold?: number;
  /** The stored category has a calibration this detection does not use, and why (said in the answer and the summary). */
  calibrationNotUsed?: { reason: string; summary: string };
}

export interface Region {
  bbox: { x: number; y: number; w: number; h: number };
  areaFraction: number;
  peak: number;
  meanScore: number;
}

export type MapPayload =
  | { type: 'grid'; width: number; height: number; values: number[] }
  | { type: 'png' | 'overlay'; width: number; height: number; encoding: 'base64'; mime: 'image/png'; data: string }
  /** format=url: the PNG is served at `url` (GET, same auth) until `expiresAt` (ISO time). */
  | { type: 'png' | 'overlay'; width: number; height: number; url: string; expiresAt: string };

export interface BranchResult {
  score: number;
  map?: MapPayload | null;
}

export interface ModelInfo {
  id: string;
  source: 'local' | 'hub';
  generatedRandomModel: boolean;
  inputSize: number;
  grid: number;
  denseLayers: number[];
  denseStart: number;
  denseAttention: string;
  /** What the towers run in: fp32, or int8 linear layers (QUANTIZE=int8). */
  precision?: 'fp32' | 'int8';
  projectionDim: number;
  promptModes: string[];
  /** Scoring methods this server offers. */
  methods?: DetectionMethod[];
  /** Learned prompt files served (prompts=learned[:<name>]) and those refused at start-up. */
  learnedPrompts?: { folder?: string; available: LearnedPromptsSummary[]; refused: RefusedPrompts[] };
}

export interface DetectResponse {
  category: string;
  /** The scoring method that produced the result. */
  method?: DetectionMethod;
  score: number;
  isAnomalous: boolean;
  threshold: number;
  regions: Region[];
  summary: string;
  image: { width: number; height: number };
  map: MapPayload | null;
  /** Per part (the frequency branches full, high, low of dense-frequency): score and map. */
  branches?: Record<string, BranchResult>;
  model: { id: string; generatedRandomModel: boolean; precision?: 'fp32' | 'int8'; warning?: string };
  timingsMs: { decode: number; encode: number; score: number; render: number; total: number };
  /** The stored record's id (feedback: POST /v1/detections/{id}/feedback). */
  detectionId?: string;
  /** The stored category used (its references and calibration), or null: zero-shot. */
  categoryResource?: { id: string; references: number; calibrated: boolean } | null;
  /** Where `threshold` came from. */
  thresholdSource?: 'request' | 'category calibration' | 'default';
  /** Whether the verdict rests on a calibration of this category. */
  calibrated?: boolean;
  /** Regions (and the map's contour) are the map above this: the calibrated pixel threshold, else `threshold`. */
  regionThreshold: number;
  /** Why the stored category's calibration was not used, when it has one. */
  calibrationNotUsed?: string;
  metadata?: Record<string, string>;
}

/** One image of a batch: its answer, or the error that image alone got. */
export type BatchItem = { ok: true; result: DetectResponse } | { ok: false; error: Error };

/** A batch's answers in upload order, and the canonical name of the method that scored them. */
export interface BatchResult {
  method: DetectionMethod;
  items: BatchItem[];
}

export interface Detector {
  readonly ready: boolean;
  info(): ModelInfo;
  detect(image: Buffer, options: DetectOptions, signal?: AbortSignal): Promise<DetectResponse>;
  /** Several images of one category, answered in order; absent: the server has no batch endpoint. */
  detectBatch?(images: readonly Buffer[], options: DetectOptions, signal?: AbortSignal): Promise<BatchResult>;
  /** True when a detection submitted now would be refused as overloaded (checked before a body is read). */
  admissionFull?(): boolean;
  /**
   * A place for one detection from the end of its upload to its answer, taken before decoding;
   * undefined when full. Without it a burst passes admissionFull() while the earlier requests
   * are still decoding (they are not queued yet), and is refused only after its own decoding.
   */
  admit?(): Admission | undefined;
  close(): Promise<void>;
}

/** One admitted detection's place; release() (idempotent) once it is answered or abandoned. */
export interface Admission {
  release(): void;
}
