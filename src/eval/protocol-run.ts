// One seed of the few-shot / calibration protocol over the categories, through the evaluation's
// own loop (evaluateConfiguration → evaluateCategory → scoreImageFile → detector.scoreDecoded):
// - memoryFor: the category's references are decoded and turned into the method's memory
//   exactly as the service turns a stored category's references into one
//   (CategoryService.memoryFor): `from: 'features'` → encode(images) then memory(records, key);
//   `from: 'images'` → memory(the last `limit` decoded images);
// - finish (after the category's test images are scored): the held-out calibration normals are
//   scored the same way (same memory, same method, same prompts), calibrateThreshold gives the
//   threshold, and it is applied to the test records (calibrate.ts).
import { readFile } from 'node:fs/promises';
import type { ClipDetector } from '../detection/clip-detector.ts';
import { decodeImage, type DecodedImage } from '../imaging/decode.ts';
import type { Category, DatasetImage } from '../dataset/mvtec.ts';
import { calibrateOnRecords } from './calibrate.ts';
import { evaluateCategory, evaluateConfiguration, type CategoryEvaluation, type ConfigurationEvaluation, type EvalDetector, type EvaluateOptions } from './evaluate.ts';
import type { CategorySplit } from './protocol.ts';
import type { Configuration } from './sweep.ts';

export type ProtocolDetector = EvalDetector & Pick<ClipDetector, 'method'>;

export interface ProtocolLevels {
  /** α of calibrateThreshold. */
  targetFalseAlarmRate: number;
  /** 1 − δ of calibrateThreshold. */
  confidence: number;
}

async function decodeAll(images: readonly DatasetImage[], maxPixels?: number): Promise<DecodedImage[]> {
  return Promise.all(
    images.map(async (image) => {
      try {
        return await decodeImage(await readFile(image.file), { maxPixels });
      } catch (err) {
        throw new Error(`${image.file}: ${(err as Error).message}`, { cause: err });
      }
    }),
  );
}

/**
 * The memory `method` builds from these reference images, as the service builds a stored
 * category's; `used` is how many of them it holds. No references, or a method without any: undefined.
 */
export async function buildReferenceMemory(
  detector: Pick<ClipDetector, 'method'>,
  method: string | undefined,
  references: readonly DatasetImage[],
  key: string,
  options: { maxPixels?: number; signal?: AbortSignal } = {},
): Promise<{ memory: unknown; used: number }> {
  const refs = detector.method(method).runner.references;
  if (!refs || references.length === 0) return { memory: undefined, used: 0 };
  if (refs.from === 'features') {
    const images = await decodeAll(references, options.maxPixels);
    return { memory: refs.memory(await refs.encode(images, options.signal), key), used: images.length };
  }
  // The service keeps the newest `limit` stored images; here the last `limit` drawn.
  const images = await decodeAll(references.slice(-refs.limit), options.maxPixels);
  return { memory: refs.memory(images), used: images.length };
}

/** One seed of the protocol: the splits of every category, and the memories while their category runs. */
export class ProtocolSeed {
  private readonly byId: Map<string, CategorySplit>;
  private readonly memories = new Map<string, { memory: unknown; used: number }>();

  constructor(
    private readonly detector: ProtocolDetector,
    readonly seed: number,
    readonly splits: readonly CategorySplit[],
    private readonly configuration: Configuration,
    private readonly levels: ProtocolLevels,
    private readonly options: EvaluateOptions = {},
  ) {
    this.byId = new Map(splits.map((s) => [s.test.id, s]));
  }

  /** The test sets (the drawn images taken out). */
  get categories(): Category[] {
    return this.splits.map((s) => s.test);
  }

  private split(category: Category): CategorySplit {
    const split = this.byId.get(category.id);
    if (!split) throw new Error(`no split for category ${category.id}`);
    return split;
  }

  /** The category's memory: built on its first request; the previous categories' are dropped (one at a time in memory). */
  async memoryFor(category: Category): Promise<unknown> {
    const held = this.memories.get(category.id);
    if (held) return held.memory;
    this.memories.clear();
    const split = this.split(category);
    const key = `eval:${this.configuration.id}:${category.id}:k=${split.references.length}:seed=${this.seed}`;
    const built = await buildReferenceMemory(this.detector, this.configuration.method, split.references, key, this.options);
    this.options.progress?.tick(split.references.length);
    this.memories.set(category.id, built);
    return built.memory;
  }

  /** The memory a category was scored with (for its overlays), while it is held. */
  memoryOf(categoryId: string): unknown {
    return this.memories.get(categoryId)?.memory;
  }

  /** After the category's test images: calibration (when asked for) and the protocol record on the evaluation. */
  async finish(evaluation: CategoryEvaluation): Promise<void> {
    const split = this.split(evaluation.category);
    const memory = await this.memoryFor(evaluation.category);
    evaluation.protocol = {
      seed: this.seed,
      source: split.source,
      references: split.references.map((r) => r.name),
      referencesUsed: this.memories.get(evaluation.category.id)?.used ?? 0,
    };
    if (split.calibrateRequested === 0) return;
    // The held-out normals through the same loop: scores only (no masks, no overlays).
    const held: Category = { ...evaluation.category, images: split.calibration, hasGroundTruth: false, notes: [] };
    const scored = held.images.length
      ? await evaluateCategory(this.detector, held, this.configuration.scoring, { ...this.options, method: this.configuration.method, memory, extremes: 0 })
      : undefined;
    evaluation.protocol.calibration = calibrateOnRecords(
      scored?.records.map((r) => r.score) ?? [],
      evaluation.records,
      this.levels.targetFalseAlarmRate,
      this.levels.confidence,
    );
  }

  /** The seed's evaluation of the configuration: evaluateConfiguration with this seed's test sets and memories. */
  async evaluate(onCategory?: (evaluation: CategoryEvaluation) => Promise<void>): Promise<ConfigurationEvaluation> {
    return evaluateConfiguration(this.detector, this.categories, this.configuration, {
      ...this.options,
      memoryFor: (c) => this.memoryFor(c),
      onCategory: async (evaluation) => {
        await this.finish(evaluation);
        await onCategory?.(evaluation);
      },
    });
  }
}
