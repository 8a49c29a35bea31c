// What the HTTP layer asks of a detector and what it gets back.

export type MapKind = 'none' | 'grid' | 'png' | 'overlay';

export type PromptChoice = { mode: 'templated' } | { mode: 'custom'; normal: string[]; abnormal: string[] };

export interface DetectOptions {
  category: string;
  prompts: PromptChoice;
  map: MapKind;
  threshold: number;
  branches: boolean;
}

export interface Region {
  bbox: { x: number; y: number; w: number; h: number };
  areaFraction: number;
  peak: number;
  meanScore: number;
}

export type MapPayload =
  | { type: 'grid'; width: number; height: number; values: number[] }
  | { type: 'png' | 'overlay'; width: number; height: number; encoding: 'base64'; mime: 'image/png'; data: string };

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
  projectionDim: number;
  promptModes: string[];
}

export interface DetectResponse {
  category: string;
  score: number;
  isAnomalous: boolean;
  threshold: number;
  regions: Region[];
  summary: string;
  image: { width: number; height: number };
  map: MapPayload | null;
  branches?: { full: BranchResult; high: BranchResult; low: BranchResult };
  model: { id: string; generatedRandomModel: boolean; warning?: string };
  timingsMs: { decode: number; encode: number; score: number; render: number; total: number };
}

export interface Detector {
  readonly ready: boolean;
  info(): ModelInfo;
  detect(image: Buffer, options: DetectOptions, signal?: AbortSignal): Promise<DetectResponse>;
  close(): Promise<void>;
}
