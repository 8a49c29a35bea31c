// The service's answers as the page reads them: today's /v1/detect and /v1/models, and the
// resources of the API contract (categories, references, calibration, detections, batch).

export interface Region {
  bbox: { x: number; y: number; w: number; h: number };
  areaFraction: number;
  peak: number;
  meanScore: number;
}

export interface GridMap {
  type: 'grid';
  width: number;
  height: number;
  values: number[];
}

export interface ImageMap {
  type: 'png' | 'overlay';
  width: number;
  height: number;
  encoding: 'base64';
  mime: 'image/png';
  data: string;
}

export type MapPayload = GridMap | ImageMap;

export interface BranchResult {
  score: number;
  map?: MapPayload | null;
}

export interface DetectResponse {
  category: string;
  method?: string;
  score: number;
  isAnomalous: boolean;
  threshold: number;
  regions: Region[];
  summary: string;
  image: { width: number; height: number };
  map: MapPayload | null;
  /** `fewShot` with a stored category's references: the part the references add to the score and map. */
  branches?: { full: BranchResult; high: BranchResult; low: BranchResult; fewShot?: BranchResult };
  model: { id: string; generatedRandomModel: boolean; warning?: string };
  timingsMs: Record<string, number>;
  detectionId?: string;
  thresholdSource?: 'request' | 'category calibration' | 'default';
  calibrated?: boolean;
  categoryResource?: { id: string; references: { count: number; limit: number } | number; calibrated: boolean } | null;
}

export interface LearnedPromptFile {
  name: string;
  default: boolean;
  categories: string[];
}

export interface ModelInfo {
  id: string;
  source: string;
  generatedRandomModel: boolean;
  inputSize: number;
  grid: number;
  denseLayers: number[];
  denseStart: number;
  denseAttention: string;
  projectionDim: number;
  promptModes: string[];
  methods?: string[];
  learnedPrompts?: { available: LearnedPromptFile[]; refused: Array<{ name: string; reason: string }> };
  capabilities?: string[];
}

export interface ModelsResponse {
  models: ModelInfo[];
  capabilities?: string[];
}

export type Capability = 'detect' | 'categories' | 'feedback' | 'batch' | 'image-responses';

export interface Calibration {
  source: 'images' | 'references';
  m: number;
  method: string;
  targetFalseAlarmRate: number;
  threshold: number;
  rank: number;
  confidence: number;
  guarantee: string;
  pixelThreshold: number;
  scores: number[];
  calibratedAt: string;
  /** False once detections no longer use it (references or the model changed); `outdated` says why. */
  current?: boolean;
  outdated?: string;
}

export interface Category {
  id: string;
  name: string;
  defaultMethod: string;
  targetFalseAlarmRate: number;
  notes: string;
  createdAt: string;
  updatedAt: string;
  references: { count: number; limit: number };
  calibration: Calibration | null;
  needsReembedding: boolean;
}

export interface CategoryInput {
  name?: string;
  targetFalseAlarmRate?: number;
  defaultMethod?: string;
  notes?: string;
}

export interface Reference {
  id: string;
  width: number;
  height: number;
  bytes: number;
  sha256: string;
  addedAt: string;
  thumbnail: string;
}

export interface DetectionRecord {
  id: string;
  time: string;
  category: string;
  categoryId: string | null;
  method: string;
  score: number;
  isAnomalous: boolean;
  threshold: number;
  thresholdSource: string;
  summary: string;
  metadata: Record<string, string> | null;
  feedback: { label: 'normal' | 'anomalous'; note?: string; at: string } | null;
  hasImage: boolean;
  /** With feedback `addTo`: what it did. */
  addedTo?: { references?: { referenceId: string | null; alreadyHeld: boolean; count: number; calibrationOutdated?: string }; calibration?: { alreadyIncluded: boolean; m: number; threshold: number } };
}

export interface FeedbackInput {
  label: 'normal' | 'anomalous';
  note?: string;
  addTo?: 'references' | 'calibration';
}

export type BatchItem =
  | { index: number; filename: string; ok: true; result: DetectResponse }
  | { index: number; filename: string; ok: false; error: string; message: string; status: number };

export interface BatchResponse {
  category: string;
  method: string;
  count: number;
  results: BatchItem[];
}
