// Categories the service remembers: their prompt text, normal references (stored with each
// method's features), calibration and detection records, over the store (src/store). The HTTP
// routes call this; it calls the detector for features and scores, so evaluation, routes and
// tools all go through the same pipeline.
import { createHash } from 'node:crypto';
import { ImageDecodeError, ImageTooLargeError, UnprocessableError } from '../errors.ts';
import { decodeImage, type DecodedImage } from '../imaging/decode.ts';
import { thumbnailJpeg } from '../imaging/thumbnail.ts';
import type { ClipDetector } from '../detection/clip-detector.ts';
import type { PackedFeatures } from '../methods/contract.ts';
import { CategoryNotFoundError, StoreUnavailableError } from '../store/errors.ts';
import { nfc } from '../store/context.ts';
import { sha256Hex } from '../store/blobs.ts';
import type { CategoryRecord, DetectionRecord, ReferenceRecord, Store } from '../store/store.ts';
import { MemoryCache } from './memory-cache.ts';
import { calibrationOutdated, type CalibrationNow, type StoredCalibration } from './stored-calibration.ts';
import { isPostgresUrl, openStore, type OpenStoreOptions } from '../store/open-store.ts';
import { ConnectingStore } from '../store/connecting-store.ts';
import type { Settings } from '../settings.ts';

export interface CategoryServiceOptions {
  referenceLimit: number;
  keepReferenceImages: boolean;
  /** Keep each detection's image with its record (KEEP_DETECTION_IMAGES). */
  keepDetectionImages: boolean;
  /** Detection records kept: newest count, and age. */
  retention: { maxCount: number; maxAgeDays: number };
  /** Confidence of calibrated thresholds (CALIBRATION_CONFIDENCE). */
  calibrationConfidence: number;
  maxPixels?: number;
  maxSide?: number;
  iccConvert?: boolean;
  /** Bytes of reference memories kept in this process. */
  memoryCacheBytes?: number;
}

/** A zero-shot detection answered without its record (the store was unreachable). */
export interface SkippedRecord {
  category: string;
  anomalous: boolean;
  /** With webhooks, an anomalous one's event (it lives in the store's outbox) was lost with it. */
  eventLost: boolean;
  reason: string;
}

/** A category as the API shows it. */
export interface CategoryView {
  id: string;
  name: string;
  defaultMethod: string;
  targetFalseAlarmRate: number;
  notes: string;
  createdAt: string;
  updatedAt: string;
  references: { count: number; limit: number };
  /** The stored calibration; `current: false` with the reason in `outdated` once detections no longer use it. */
  calibration: (StoredCalibration & { current: boolean; outdated?: string }) | null;
  /** Some references lack features for the loaded model: POST /v1/reembed computes them from the stored images. */
  needsReembedding: boolean;
}

export interface ReferenceView {
  id: string;
  width: number;
  height: number;
  bytes: number;
  sha256: string;
  addedAt: string;
  thumbnail: string;
}

/** An upload the category already held (or that came twice): not stored again. */
export interface DuplicateReference {
  /** Its position among the request's files (0-based). */
  index: number;
  filename?: string;
  sha256: string;
  /** The reference holding the same image. */
  referenceId: string | null;
}

export interface AddedReferences {
  added: ReferenceRecord[];
  duplicates: DuplicateReference[];
}

/** An uploaded file: its bytes and the name the client gave it (for messages). */
export interface UploadedImage {
  bytes: Buffer;
  filename?: string;
}

/**
 * How stale the list of stored category ids may get. A category created on another replica less
 * than this before the store went away is not known here, and is scored zero-shot meanwhile.
 */
const KNOWN_CATEGORIES_MS = 5_000;

export class CategoryService {
  private readonly memories: MemoryCache;
  /** referencesKey by `${id}\u0000${updatedAt}`. */
  private readonly referenceKeys = new Map<string, string>();

  private pruneTimer?: NodeJS.Timeout;

  constructor(
    readonly store: Store,
    readonly detector: ClipDetector,
    readonly options: CategoryServiceOptions,
  ) {
    this.memories = new MemoryCache(options.memoryCacheBytes ?? 1 << 30);
  }

  /** Deletes detection records past the retention now and every `everyMs`; stop with close(). */
  keepRetention(everyMs = 10 * 60_000, log: (err: unknown) => void = () => {}): void {
    const prune = () => void this.store.pruneDetections(this.options.retention).catch(log);
    prune();
    this.pruneTimer = setInterval(prune, everyMs);
    this.pruneTimer.unref();
  }

  close(): void {
    clearInterval(this.pruneTimer);
  }

  /** Zero-shot detections answered without a record because the store was unreachable. */
  skippedRecords = 0;
  private readonly skipListeners: Array<(info: SkippedRecord) => void> = [];

  /** Calls `listener` for every zero-shot detection whose record could not be written. */
  onRecordSkipped(listener: (info: SkippedRecord) => void): void {
    this.skipListeners.push(listener);
  }

  recordSkipped(result: { category: string; isAnomalous: boolean }, eventLost: boolean, err: Error): void {
    this.skippedRecords += 1;
    for (const listener of this.skipListeners) listener({ category: result.category, anomalous: result.isAnomalous, eventLost, reason: err.message });
  }

  /** The feature keys the offered methods store features under (method name → key). */
  featureKeys(): Map<string, string> {
    const keys = new Map<string, string>();
    for (const name of this.detector.methods()) {
      const refs = this.detector.method(name).runner.references;
      if (refs?.from === 'features') keys.set(name, refs.featureKey);
    }
    return keys;
  }

  async view(record: CategoryRecord, stale?: Set<string>): Promise<CategoryView> {
    const needing = stale ?? (await this.staleCategories());
    return {
      id: record.id,
      name: record.name,
      defaultMethod: record.defaultMethod,
      targetFalseAlarmRate: record.targetFalseAlarmRate,
      notes: record.notes,
      createdAt: record.createdAt.toISOString(),
      updatedAt: record.updatedAt.toISOString(),
      references: { count: record.referenceCount, limit: this.options.referenceLimit },
      calibration: await this.calibrationView(record),
      needsReembedding: needing.has(record.id),
    };
  }

  /** The category and the detector as a calibration of `method` is checked against. */
  async calibrationNow(record: CategoryRecord, method: string): Promise<CalibrationNow> {
    return {
      referenceCount: record.referenceCount,
      referencesKey: await this.referencesKey(record),
      featureKey: this.featureKeys().get(method) ?? null,
      scoringKey: this.detector.scoringKey(method),
      name: record.name,
      targetFalseAlarmRate: record.targetFalseAlarmRate,
    };
  }

  /**
   * The set of a category's reference ids as a short key: a calibration holds for the references
   * it was scored against, not for as many others. Cached by the category's updatedAt, which every
   * reference change moves, so a detection costs no query once it is known.
   */
  async referencesKey(record: CategoryRecord): Promise<string> {
    if (record.referenceCount === 0) return 'none';
    const at = `${record.id}\u0000${record.updatedAt.getTime()}`;
    const hit = this.referenceKeys.get(at);
    if (hit) return hit;
    const ids = (await this.store.listReferences(record.id)).map((r) => r.id).sort();
    const key = createHash('sha256').update(ids.join(',')).digest('hex').slice(0, 32);
    if (this.referenceKeys.size >= 256) this.referenceKeys.clear();
    this.referenceKeys.set(at, key);
    return key;
  }

  /** The stored calibration, with whether detections use it (`current`) and, when not, why (`outdated`). */
  async calibrationView(record: CategoryRecord): Promise<CategoryView['calibration']> {
    const c = record.calibration as StoredCalibration | null;
    if (!c) return null;
    const outdated = calibrationOutdated(c, await this.calibrationNow(record, c.method));
    return { ...c, current: outdated === null, ...(outdated ? { outdated } : {}) };
  }

  /** Categories with references that lack features of the loaded model. */
  async staleCategories(): Promise<Set<string>> {
    const ids = new Set<string>();
    for (const key of this.featureKeys().values()) for (const id of await this.store.categoriesNeedingFeatures(key)) ids.add(id);
    return ids;
  }

  /**
   * The stored category a detection names, or null for a zero-shot one. When the store cannot be
   * reached, a name among the stored categories as last listed is a 503 store_unavailable (its
   * references and calibration are not at hand); any other name is scored zero-shot, without
   * the store (`storeUnavailable` says so, and the record is skipped).
   */
  async lookupForDetection(id: string): Promise<{ record: CategoryRecord | null; storeUnavailable?: StoreUnavailableError }> {
    try {
      const record = await this.store.getCategory(id);
      if (record) this.known?.ids.add(record.id);
      else this.known?.ids.delete(nfc(id));
      this.refreshKnownCategories();
      return { record };
    } catch (err) {
      if (!(err instanceof StoreUnavailableError) || this.known?.ids.has(nfc(id))) throw err;
      return { record: null, storeUnavailable: err };
    }
  }

  /** Ids of the stored categories, listed at most every KNOWN_CATEGORIES_MS while detections come. */
  private known?: { ids: Set<string>; at: number };
  private listing?: Promise<void>;

  private refreshKnownCategories(): void {
    if (this.listing || (this.known && Date.now() - this.known.at < KNOWN_CATEGORIES_MS)) return;
    this.listing = this.store
      .listCategories()
      .then(
        (records) => void (this.known = { ids: new Set(records.map((r) => r.id)), at: Date.now() }),
        () => {}, // kept as it was: the next detection tries again
      )
      .finally(() => (this.listing = undefined));
  }

  /** Stored categories as last listed, or undefined before the first listing (tests wait on it). */
  async knownCategories(): Promise<ReadonlySet<string> | undefined> {
    await this.listing;
    return this.known?.ids;
  }

  async require(id: string): Promise<CategoryRecord> {
    const record = await this.store.getCategory(id);
    if (!record) throw new CategoryNotFoundError(id);
    return record;
  }

  /**
   * Decodes, encodes and stores the uploads as references. An image the category already holds
   * (the same bytes), or one sent twice, is not stored again: it is listed in `duplicates` with
   * the reference that holds it, and it costs no encoding. Nothing changes when every upload is
   * a duplicate, so a repeated request (a retry, a second click) leaves the calibration current.
   */
  async addReferences(id: string, uploads: readonly UploadedImage[], signal?: AbortSignal): Promise<AddedReferences> {
    await this.require(id);
    const held = new Map((await this.store.listReferences(id)).map((r) => [r.sha256, r.id]));
    const fresh: Array<UploadedImage & { index: number; sha256: string }> = [];
    const duplicates: DuplicateReference[] = [];
    const duplicate = (u: UploadedImage, index: number, sha256: string, referenceId: string | null): DuplicateReference => ({ index, ...(u.filename ? { filename: u.filename } : {}), sha256, referenceId });
    const seen = new Set<string>();
    uploads.forEach((u, index) => {
      const sha256 = sha256Hex(u.bytes);
      const holder = held.get(sha256);
      if (holder !== undefined || seen.has(sha256)) duplicates.push(duplicate(u, index, sha256, holder ?? null));
      else {
        seen.add(sha256);
        fresh.push({ ...u, index, sha256 });
      }
    });
    if (fresh.length === 0) return { added: [], duplicates };
    const images = await this.decodeAll(fresh);
    const features = await this.encodeFeatures(images, signal);
    const references = await Promise.all(
      fresh.map(async (u, i) => ({
        width: images[i].width,
        height: images[i].height,
        image: u.bytes,
        thumbnail: await thumbnailJpeg(images[i]),
        features: features.map(({ key, packed }) => ({ featureKey: key, shape: packed[i].shape, data: packed[i].data })),
      })),
    );
    const added = await this.store.addReferences(id, references, { limit: this.options.referenceLimit, keepImages: this.options.keepReferenceImages });
    const bySha = new Map(added.map((r) => [r.sha256, r.id]));
    // An upload the store left out was stored meanwhile by another request (a retry sent while
    // the first was in flight): a duplicate too, of the reference that request made.
    const raced = fresh.filter((f) => !bySha.has(f.sha256));
    if (raced.length) {
      const holders = new Map((await this.store.listReferences(id)).map((r) => [r.sha256, r.id]));
      for (const f of raced) duplicates.push(duplicate(f, f.index, f.sha256, holders.get(f.sha256) ?? null));
      duplicates.sort((a, b) => a.index - b.index);
    }
    // A copy sent twice in one request names the reference its first copy became.
    for (const d of duplicates) d.referenceId ??= bySha.get(d.sha256) ?? null;
    return { added, duplicates };
  }

  /** Every feature-storing method's features of the images. */
  private async encodeFeatures(images: readonly DecodedImage[], signal?: AbortSignal): Promise<Array<{ key: string; packed: PackedFeatures[] }>> {
    const out: Array<{ key: string; packed: PackedFeatures[] }> = [];
    for (const name of this.detector.methods()) {
      const refs = this.detector.method(name).runner.references;
      if (refs?.from === 'features') out.push({ key: refs.featureKey, packed: await refs.encode(images, signal) });
    }
    return out;
  }

  /** Decodes uploads with the service's limits; an error names the file that failed. */
  async decodeAll(uploads: readonly UploadedImage[]): Promise<DecodedImage[]> {
    const limits = { maxPixels: this.options.maxPixels, maxSide: this.options.maxSide, iccConvert: this.options.iccConvert };
    return Promise.all(
      uploads.map(async (u, i) => {
        try {
          return await decodeImage(u.bytes, limits);
        } catch (err) {
          const what = `image ${i + 1}${u.filename ? ` (${u.filename})` : ''}: `;
          if (err instanceof ImageDecodeError) throw new ImageDecodeError(what + err.message, { cause: err });
          if (err instanceof ImageTooLargeError) throw new ImageTooLargeError(what + err.message, { cause: err });
          throw err;
        }
      }),
    );
  }

  /**
   * What `method` uses of the category's references for a detection (cached per process, keyed
   * by the category's updatedAt, which every reference change moves); undefined without any.
   */
  async memoryFor(record: CategoryRecord, method: string, exclude?: string): Promise<unknown> {
    if (record.referenceCount === 0) return undefined;
    const refs = this.detector.method(method).runner.references;
    if (!refs) return undefined;
    const key = `${record.id}\u0000${method}\u0000${record.updatedAt.getTime()}\u0000${exclude ?? ''}`;
    return this.memories.getOrBuild(key, async () => {
      if (refs.from === 'features') {
        const records = (await this.store.loadFeatures(record.id, refs.featureKey)).filter((r) => r.referenceId !== exclude);
        if (records.length === 0) return { value: undefined, bytes: 0 };
        const memory = refs.memory(records, key);
        return { value: memory, bytes: records.reduce((n, r) => n + r.data.length * 2, 0) };
      }
      const listed = (await this.store.listReferences(record.id)).filter((r) => r.hasImage && r.id !== exclude).slice(-refs.limit);
      const images = await this.decodeAll(
        (await Promise.all(listed.map((r) => this.store.getReferenceImage(record.id, r.id)))).filter((b): b is Buffer => b !== null).map((bytes) => ({ bytes })),
      );
      if (images.length === 0) return { value: undefined, bytes: 0 };
      return { value: refs.memory(images), bytes: images.reduce((n, im) => n + im.rgb.length, 0) };
    });
  }

  /** Recomputes missing features of every category from the stored reference images. */
  async reembed(signal?: AbortSignal): Promise<{ categories: string[]; references: number; withoutImage: number }> {
    const done: string[] = [];
    let references = 0;
    let withoutImage = 0;
    for (const id of await this.staleCategories()) {
      const listed = await this.store.listReferences(id);
      const kept = listed.filter((r) => r.hasImage);
      withoutImage += listed.length - kept.length;
      const bytes = await Promise.all(kept.map((r) => this.store.getReferenceImage(id, r.id)));
      const images = await this.decodeAll(bytes.map((b) => ({ bytes: b ?? Buffer.alloc(0) })));
      for (const { key, packed } of await this.encodeFeatures(images, signal)) {
        await this.store.replaceFeatures(id, key, packed.map((p, i) => ({ referenceId: kept[i].id, shape: p.shape, data: p.data })));
      }
      references += kept.length;
      done.push(id);
    }
    return { categories: done, references, withoutImage };
  }

  /** Stored images of the references (leave-one-out calibration); 422 when some were not kept. */
  async referenceImages(id: string): Promise<Array<{ reference: ReferenceRecord; image: DecodedImage }>> {
    const listed = await this.store.listReferences(id);
    const missing = listed.filter((r) => !r.hasImage).length;
    if (missing) throw new UnprocessableError(`${missing} of the ${listed.length} references have no stored image (KEEP_REFERENCE_IMAGES=0); calibrate with held-out normal images instead`);
    const bytes = await Promise.all(listed.map((r) => this.store.getReferenceImage(id, r.id)));
    const images = await this.decodeAll(bytes.map((b) => ({ bytes: b! })));
    return listed.map((reference, i) => ({ reference, image: images[i] }));
  }
}

export function referenceView(r: ReferenceRecord): ReferenceView {
  return {
    id: r.id,
    width: r.width,
    height: r.height,
    bytes: r.bytes,
    sha256: r.sha256,
    addedAt: r.addedAt.toISOString(),
    thumbnail: `data:image/jpeg;base64,${r.thumbnail.toString('base64')}`,
  };
}

export function detectionView(d: DetectionRecord) {
  return {
    id: d.id,
    time: d.time.toISOString(),
    category: d.category,
    categoryId: d.categoryId,
    method: d.method,
    score: d.score,
    isAnomalous: d.isAnomalous,
    threshold: d.threshold,
    thresholdSource: d.thresholdSource,
    summary: d.summary,
    metadata: d.metadata,
    feedback: d.feedback ? { label: d.feedback.label, note: d.feedback.note, at: d.feedback.at.toISOString() } : null,
    hasImage: d.imageSha256 !== null,
  };
}

/** The service's options as the settings give them. */
export function categoryServiceOptions(settings: Settings): CategoryServiceOptions {
  return {
    referenceLimit: settings.referenceLimit,
    keepReferenceImages: settings.keepReferenceImages,
    keepDetectionImages: settings.keepDetectionImages,
    retention: { maxCount: settings.detectionRetentionCount, maxAgeDays: settings.detectionRetentionDays },
    calibrationConfidence: settings.calibrationConfidence,
    maxPixels: settings.maxPixels,
    maxSide: settings.maxSide,
    iccConvert: settings.iccConvert,
  };
}

/** What the settings say about the store: PostgreSQL with STORE_URL, else SQLite in DATA_DIR. */
export function storeOptions(settings: Settings): OpenStoreOptions {
  return {
    url: settings.storeUrl,
    dataDir: settings.dataDir,
    outboxMaxBytes: settings.webhookOutboxMaxBytes,
    schema: settings.storeSchema,
    poolSize: settings.storePoolSize,
    statementTimeoutMs: settings.storeStatementTimeoutMs,
    connectTimeoutMs: settings.storeConnectTimeoutMs,
    ssl: settings.storeSsl,
  };
}

/** The store named by the settings, opened now (fails when it cannot be reached). */
export function openSettingsStore(settings: Settings): Promise<Store> {
  return openStore(storeOptions(settings));
}

/**
 * The store named by the settings, opened in the background by `connect()` with retries (the
 * server's way: a database that is down at start-up does not stop the service).
 */
export function connectingSettingsStore(settings: Settings): ConnectingStore {
  const options = storeOptions(settings);
  return new ConnectingStore(isPostgresUrl(options.url) ? 'postgres' : 'sqlite', () => openStore(options));
}
