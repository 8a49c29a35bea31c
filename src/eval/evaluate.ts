// Runs one configuration over the categories through the service's own path: decodeImage →
// ClipDetector.scoreDecoded (templated prompts with the category name, or learned prompts) → image score and map.
// Nothing here scores; it collects what the detector returns and hands it to metrics.ts.
//
// Pixel metrics are computed at a fixed PIXEL_SIZE × PIXEL_SIZE (default 256), as anomalib and
// most papers do, so memory does not depend on the image resolution:
// - the map (at the image size) is resized with bilinear interpolation (align_corners=false).
//   The map is already a Gaussian-smoothed upsampling of a coarse patch grid, so resizing it
//   without an anti-alias filter loses nothing that matters;
// - the mask is resized nearest-neighbour (pixel centres) and thresholded at > 127 (JPEG-safe,
//   readMaskInto in src/dataset/mvtec.ts);
// - maps and masks go straight into one preallocated Float32Array / Uint8Array per category:
//   5 B per pixel (328 MB for 1000 images at 256²); the metrics add ≈ 8–16 B per pixel while
//   they run (see metrics.ts), so a 1000-image category peaks below 1 GB.
import { readFile } from 'node:fs/promises';
import { decodeImage, type DecodedImage } from '../imaging/decode.ts';
import type { ClipDetector } from '../detection/clip-detector.ts';
import type { ModelInfo } from '../detection/types.ts';
import type { PromptChoice } from '../prompts/prompt-choice.ts';
import type { ScoringSettings } from '../methods/dense-frequency/pipeline.ts';
import type { MethodOutcome } from '../methods/contract.ts';
import { upsampleBilinear } from '../imaging/resample-maps.ts';
import { aupro, pixelRankingMetrics, rankingMetrics } from './metrics.ts';
import { readMaskInto, type Category, type DatasetImage } from '../dataset/mvtec.ts';
import type { Configuration } from './sweep.ts';
import { imageRocCurve, pixelCurves, type Curve } from './curves.ts';
import type { Progress } from './progress.ts';
import type { CategoryProtocol } from './protocol.ts';

export const DEFAULT_PIXEL_SIZE = 256;
/** scoreDecoded needs a threshold for its regions; the evaluation uses them only in its overlay figures. */
export const REGION_THRESHOLD = 0.5;

/** `method` and `scoreDecodedBatch` are needed for batch-only methods (MuSc): a category is scored as one batch. */
export type EvalDetector = Pick<ClipDetector, 'scoreDecoded' | 'info'> & Partial<Pick<ClipDetector, 'scoreDecodedBatch' | 'method'>>;

export interface EvaluateOptions {
  /** Side of the square grid the pixel metrics are computed on. */
  pixelSize?: number;
  /** Images in flight at once: decoding overlaps the workers' inference. */
  concurrency?: number;
  /** Images over this many pixels are refused (the service's MAX_PIXELS). */
  maxPixels?: number;
  /** How many images of each kind to pick for overlays. */
  extremes?: number;
  progress?: Progress;
  signal?: AbortSignal;
  /** Prompts to score with; default templated (with the category name). */
  prompts?: PromptChoice;
  /** The scoring method; the detector's default without one. */
  method?: string;
  /** What the method built from normal references (ReferenceMemory.memory): few-shot scoring, as for a stored category. */
  memory?: unknown;
  /** evaluateConfiguration: each category's memory (the few-shot protocol), built when the category's turn comes. */
  memoryFor?: (category: Category) => Promise<unknown>;
  /** Called after each category (e.g. to write its overlays) while the detector is open. */
  onCategory?: (evaluation: CategoryEvaluation) => Promise<void>;
}

/** Every metric of method.md §7; null where it is undefined (one class only, no masks). */
export interface CategoryMetrics {
  imageAuroc: number | null;
  imageAp: number | null;
  imageF1Max: number | null;
  /** The image score at which F1-max is reached. */
  imageF1Threshold: number | null;
  pixelAuroc: number | null;
  pixelAp: number | null;
  pixelF1Max: number | null;
  aupro: number | null;
}

export const METRIC_KEYS = ['imageAuroc', 'imageAp', 'imageF1Max', 'pixelAuroc', 'pixelAp', 'aupro'] as const;
export type MetricKey = (typeof METRIC_KEYS)[number];

/** Each metric's name in reports and tables. */
export const METRIC_TITLES: Record<MetricKey, string> = {
  imageAuroc: 'image AUROC',
  imageAp: 'image AP',
  imageF1Max: 'image F1-max',
  pixelAuroc: 'pixel AUROC',
  pixelAp: 'pixel AP',
  aupro: 'AUPRO@0.3',
};

export interface ScoredRecord {
  name: string;
  type: string;
  label: 0 | 1;
  score: number;
  pImage: number;
}

export type ExtremeKind = 'detected' | 'missed' | 'false-alarm';

/** An image picked for an overlay: the highest-scored defects (detected), the lowest-scored
 * defects (missed) and the highest-scored good images (worst false alarms). */
export interface Extreme {
  kind: ExtremeKind;
  rank: number;
  image: DatasetImage;
  score: number;
  /**
   * The image and its outcome, kept when the image cannot be scored again alone (a batch-only
   * method's scores depend on the whole category): the overlay is drawn from them, then they
   * are dropped (run.ts).
   */
  scored?: { decoded: DecodedImage; outcome: MethodOutcome };
}

export interface CategoryTimings {
  wallMs: number;
  /** Sums over images (they overlap in time when concurrency > 1). */
  decodeMs: number;
  textMs: number;
  encodeMs: number;
  scoreMs: number;
  metricsMs: number;
}

export interface CategoryEvaluation {
  category: Category;
  images: number;
  good: number;
  defective: number;
  /** Images in the pixel metrics (good ones plus defective ones with a mask). */
  pixelImages: number;
  metrics: CategoryMetrics;
  records: ScoredRecord[];
  curves: { imageRoc: Curve | null; pixelRoc: Curve | null; pro: Curve | null };
  extremes: Extreme[];
  notes: string[];
  timings: CategoryTimings;
  /** The few-shot / calibration protocol's draw and outcome for this category (set by protocol-run.ts). */
  protocol?: CategoryProtocol;
}

export type MeanMetrics = Record<MetricKey, number | null> & {
  /** Categories each mean is over (pixel metrics only exist where there are masks). */
  counts: Record<MetricKey, number>;
};

export interface ConfigurationEvaluation {
  configuration: Configuration;
  model: ModelInfo;
  categories: CategoryEvaluation[];
  mean: MeanMetrics;
  timings: { wallMs: number; images: number; imagesPerSecond: number };
  /** One seed of the few-shot / calibration protocol: the seed and the configuration (grid id) it belongs to. */
  protocolSeed?: { seed: number; configuration: string; label: string };
}

function finiteOrNull(v: number): number | null {
  return Number.isFinite(v) ? v : null;
}

/** Runs `fn` over items with at most `limit` in flight; the first error stops new starts and is thrown. */
async function mapLimit<T>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const lane = async () => {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        await fn(items[i], i);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  const lanes = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, lane);
  const results = await Promise.allSettled(lanes);
  const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (rejected) throw rejected.reason;
}

/** Reads and decodes one dataset image with the service's limits; errors name the file. */
async function decodeFile(image: DatasetImage, maxPixels?: number): Promise<DecodedImage> {
  try {
    return await decodeImage(await readFile(image.file), { maxPixels });
  } catch (err) {
    // Every image of a category counts in its metrics: a damaged one stops the run, saying what to do.
    throw new Error(`${image.file}: ${(err as Error).message}; fix or remove the file (every image of a category counts in its metrics)`, { cause: err });
  }
}

/** True when the method scores batches only (MuSc): then a whole category is one batch. */
export function scoresBatchesOnly(detector: EvalDetector, method?: string): boolean {
  return Boolean(detector.method?.(method).method.batchOnly);
}

/** Decodes one dataset image and scores it exactly as the service would. */
export async function scoreImageFile(
  detector: EvalDetector,
  image: DatasetImage,
  categoryName: string,
  scoring: ScoringSettings,
  options: { maxPixels?: number; signal?: AbortSignal; prompts?: PromptChoice; method?: string; memory?: unknown } = {},
): Promise<{ decoded: DecodedImage; outcome: MethodOutcome; decodeMs: number; textMs: number }> {
  const t0 = performance.now();
  const decoded = await decodeFile(image, options.maxPixels);
  const decodeMs = performance.now() - t0;
  const { outcome, textMs } = await detector.scoreDecoded(scoreRequest(decoded, categoryName, scoring, options));
  return { decoded, outcome, decodeMs, textMs };
}

/** What the detector is asked for one decoded image of a run, alone or in a batch. */
function scoreRequest(image: DecodedImage, categoryName: string, scoring: ScoringSettings, options: { signal?: AbortSignal; prompts?: PromptChoice; method?: string; memory?: unknown }) {
  return {
    image,
    category: categoryName,
    prompts: options.prompts ?? ({ mode: 'templated' } as const),
    threshold: REGION_THRESHOLD,
    signal: options.signal,
    method: options.method,
    settings: scoring,
    memory: options.memory,
  };
}

/** How many images pickExtremes returns for a category: known before the run, for the progress total. */
export function extremesCount(category: Category, perKind: number): number {
  const defective = category.images.filter((i) => i.label === 1).length;
  const detected = Math.min(perKind, defective);
  return detected + Math.min(perKind, defective - detected) + Math.min(perKind, category.images.length - defective);
}

function pickExtremes(images: readonly DatasetImage[], scores: Float64Array, count: number): Extreme[] {
  if (count <= 0) return [];
  const byScore = (label: 0 | 1, descending: boolean) =>
    images
      .map((image, i) => ({ image, score: scores[i] }))
      .filter((e) => e.image.label === label)
      .sort((a, b) => (descending ? b.score - a.score : a.score - b.score) || a.image.name.localeCompare(b.image.name));
  const detected = byScore(1, true).slice(0, count);
  const missed = byScore(1, false)
    .filter((e) => !detected.some((d) => d.image === e.image))
    .slice(0, count);
  const falseAlarms = byScore(0, true).slice(0, count);
  const tag = (kind: ExtremeKind, list: { image: DatasetImage; score: number }[]) => list.map((e, i) => ({ kind, rank: i + 1, ...e }));
  return [...tag('detected', detected), ...tag('missed', missed), ...tag('false-alarm', falseAlarms)];
}

/** Scores every image of a category and computes its metrics and curves. */
export async function evaluateCategory(
  detector: EvalDetector,
  category: Category,
  scoring: ScoringSettings,
  options: EvaluateOptions = {},
): Promise<CategoryEvaluation> {
  const size = options.pixelSize ?? DEFAULT_PIXEL_SIZE;
  const plane = size * size;
  const started = performance.now();
  const images = category.images;
  const scores = new Float64Array(images.length);
  const pImages = new Float64Array(images.length);
  const labels = Uint8Array.from(images, (i) => i.label);

  // Pixel slots: every image of a category with masks, except defective ones without a mask.
  const slot = new Int32Array(images.length).fill(-1);
  let pixelImages = 0;
  if (category.hasGroundTruth) images.forEach((img, i) => (img.label === 0 || img.mask ? (slot[i] = pixelImages++) : undefined));
  const maps = new Float32Array(pixelImages * plane);
  const masks = new Uint8Array(pixelImages * plane);

  const timings: CategoryTimings = { wallMs: 0, decodeMs: 0, textMs: 0, encodeMs: 0, scoreMs: 0, metricsMs: 0 };
  let maskSizeMismatches = 0;
  const collect = async (i: number, decoded: DecodedImage, outcome: MethodOutcome, decodeMs: number, textMs: number) => {
    const image = images[i];
    scores[i] = outcome.score;
    pImages[i] = outcome.pImage;
    timings.decodeMs += decodeMs;
    timings.textMs += textMs;
    timings.encodeMs += outcome.encodeMs;
    timings.scoreMs += outcome.scoreMs;
    const s = slot[i];
    if (s >= 0) {
      upsampleBilinear(outcome.map, decoded.height, decoded.width, size, size, maps.subarray(s * plane, (s + 1) * plane));
      if (image.mask) {
        const m = await readMaskInto(image.mask, size, masks.subarray(s * plane, (s + 1) * plane));
        if (m.width !== decoded.width || m.height !== decoded.height) maskSizeMismatches++;
      }
    }
    options.progress?.tick();
  };
  const batchOnly = scoresBatchesOnly(detector, options.method);
  let kept: Array<{ decoded: DecodedImage; outcome: MethodOutcome }> | undefined;
  if (batchOnly) {
    // The paper's protocol (MuSc): every test image of the category in one batch, scored
    // mutually through the detector's batch path, as POST /v1/detect/batch scores an upload.
    if (!detector.scoreDecodedBatch) throw new Error(`method ${options.method} scores batches only and this detector has no batch path`);
    const decoded = new Array<DecodedImage>(images.length);
    const decodeMs = new Float64Array(images.length);
    await mapLimit(images, options.concurrency ?? 2, async (image, i) => {
      const t0 = performance.now();
      decoded[i] = await decodeFile(image, options.maxPixels);
      decodeMs[i] = performance.now() - t0;
    });
    options.progress?.status(`${category.id}: ${images.length} images scored as one batch`);
    const results = await detector.scoreDecodedBatch(
      decoded.map((image) => scoreRequest(image, category.name, scoring, options)),
      options.method,
    );
    kept = results.map((r, i) => ({ decoded: decoded[i], outcome: r.outcome }));
    for (let i = 0; i < images.length; i++) await collect(i, decoded[i], results[i].outcome, decodeMs[i], results[i].textMs);
  } else {
    await mapLimit(images, options.concurrency ?? 2, async (image, i) => {
      const { decoded, outcome, decodeMs, textMs } = await scoreImageFile(detector, image, category.name, scoring, options);
      await collect(i, decoded, outcome, decodeMs, textMs);
    });
  }

  const t = performance.now();
  const image = rankingMetrics(scores, labels);
  const metrics: CategoryMetrics = {
    imageAuroc: finiteOrNull(image.auroc),
    imageAp: finiteOrNull(image.averagePrecision),
    imageF1Max: finiteOrNull(image.f1Max),
    imageF1Threshold: finiteOrNull(image.f1Threshold),
    pixelAuroc: null,
    pixelAp: null,
    pixelF1Max: null,
    aupro: null,
  };
  let pixel: { roc: Curve | null; pro: Curve | null } = { roc: null, pro: null };
  if (pixelImages > 0) {
    const ranking = pixelRankingMetrics(maps, masks);
    metrics.pixelAuroc = finiteOrNull(ranking.auroc);
    metrics.pixelAp = finiteOrNull(ranking.averagePrecision);
    metrics.pixelF1Max = finiteOrNull(ranking.f1Max);
    // Views into the shared buffers: no copy per image.
    const mapViews = Array.from({ length: pixelImages }, (_, k) => maps.subarray(k * plane, (k + 1) * plane));
    const maskViews = Array.from({ length: pixelImages }, (_, k) => masks.subarray(k * plane, (k + 1) * plane));
    metrics.aupro = finiteOrNull(aupro(mapViews, maskViews, { width: size, height: size }));
    pixel = pixelCurves(mapViews, maskViews, size);
  }
  timings.metricsMs = performance.now() - t;
  timings.wallMs = performance.now() - started;

  const notes = [...category.notes];
  if (maskSizeMismatches) notes.push(`${maskSizeMismatches} mask(s) differ in size from their image (both are resized to ${size}×${size})`);
  const defective = labels.reduce((n, l) => n + l, 0);
  return {
    category,
    images: images.length,
    good: images.length - defective,
    defective,
    pixelImages,
    metrics,
    records: images.map((img, i) => ({ name: img.name, type: img.type, label: img.label, score: scores[i], pImage: pImages[i] })),
    curves: { imageRoc: imageRocCurve(scores, labels), pixelRoc: pixel.roc, pro: pixel.pro },
    extremes: pickExtremes(images, scores, options.extremes ?? 3).map((e) => (kept ? { ...e, scored: kept[images.indexOf(e.image)] } : e)),
    notes,
    timings,
  };
}

/** Macro mean over categories (method.md §7): each metric over the categories where it is defined. */
export function macroMean(categories: readonly CategoryEvaluation[]): MeanMetrics {
  const mean = { counts: {} } as MeanMetrics;
  for (const key of METRIC_KEYS) {
    const values = categories.map((c) => c.metrics[key]).filter((v): v is number => v !== null);
    mean[key] = values.length ? values.reduce((a, b) => a + b, 0) / values.length : null;
    mean.counts[key] = values.length;
  }
  return mean;
}

/** One configuration over every category, one category at a time (bounded memory). */
export async function evaluateConfiguration(
  detector: EvalDetector,
  categories: readonly Category[],
  configuration: Configuration,
  options: EvaluateOptions = {},
): Promise<ConfigurationEvaluation> {
  const started = performance.now();
  const results: CategoryEvaluation[] = [];
  for (const category of categories) {
    options.progress?.status(`${configuration.id} ${category.id}`);
    const memory = options.memoryFor ? await options.memoryFor(category) : options.memory;
    const evaluation = await evaluateCategory(detector, category, configuration.scoring, { ...options, method: configuration.method, memory });
    await options.onCategory?.(evaluation);
    results.push(evaluation);
  }
  const wallMs = performance.now() - started;
  const images = results.reduce((n, c) => n + c.images, 0);
  return {
    configuration,
    model: detector.info(),
    categories: results,
    mean: macroMean(results),
    timings: { wallMs, images, imagesPerSecond: images / Math.max(wallMs / 1000, 1e-9) },
  };
}
