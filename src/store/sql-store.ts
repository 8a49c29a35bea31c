// The Store over either SQL backend: each method is one transaction of the statements in
// catalog.ts, detections.ts and outbox.ts, so SQLite and PostgreSQL behave alike.
import { readBlob } from './blobs.ts';
import { Catalog } from './catalog.ts';
import { DEFAULT_OUTBOX_MAX_BYTES, type StoreContext } from './context.ts';
import { Detections } from './detections.ts';
import { Outbox } from './outbox.ts';
import { toNumber, type SqlBackend, type SqlTx } from './sql.ts';
import type {
  AddReferencesOptions,
  CategoryInput,
  ClaimOptions,
  CommonStoreOptions,
  DetectionQuery,
  EventFailure,
  NewDetection,
  NewReference,
  OutboxEventInput,
  ReferenceFeatures,
  RetentionPolicy,
  Store,
  StoreStats,
  Verdict,
} from './store.ts';

export class SqlStore implements Store {
  readonly backend: 'sqlite' | 'postgres';
  private readonly catalog: Catalog;
  private readonly detections: Detections;
  private readonly outbox: Outbox;
  private readonly ctx: StoreContext;

  constructor(
    private readonly sql: SqlBackend,
    options: CommonStoreOptions = {},
  ) {
    this.backend = sql.name;
    this.ctx = {
      backend: sql,
      clock: options.clock ?? (() => new Date()),
      outboxMaxBytes: options.outboxMaxBytes ?? DEFAULT_OUTBOX_MAX_BYTES,
    };
    this.catalog = new Catalog(this.ctx);
    this.detections = new Detections(this.ctx);
    this.outbox = new Outbox(this.ctx);
  }

  private read<T>(fn: (tx: SqlTx) => Promise<T>): Promise<T> {
    return this.sql.transaction('read', fn);
  }

  private write<T>(fn: (tx: SqlTx) => Promise<T>): Promise<T> {
    return this.sql.transaction('write', fn);
  }

  async ping(): Promise<void> {
    await this.read((tx) => tx.all('SELECT 1 AS one'));
  }

  async schemaVersion(): Promise<number> {
    return this.read(async (tx) => toNumber((await tx.all('SELECT MAX(version) AS v FROM schema_version'))[0]!.v));
  }

  stats(): Promise<StoreStats> {
    return this.read(async (tx) => {
      const [row] = await tx.all(`SELECT
        (SELECT COUNT(*) FROM categories) AS categories,
        (SELECT COUNT(*) FROM category_references) AS refs,
        (SELECT COUNT(*) FROM detections) AS detections,
        (SELECT COUNT(*) FROM blobs) AS blobs,
        (SELECT COALESCE(SUM(bytes), 0) FROM blobs) AS blob_bytes`);
      return {
        categories: toNumber(row!.categories),
        references: toNumber(row!.refs),
        detections: toNumber(row!.detections),
        blobs: toNumber(row!.blobs),
        blobBytes: toNumber(row!.blob_bytes),
      };
    });
  }

  private closing?: Promise<void>;

  /** Waits for running transactions; calling it again is harmless. */
  close(): Promise<void> {
    this.closing ??= this.sql.close();
    return this.closing;
  }

  putCategory(input: CategoryInput) {
    return this.write((tx) => this.catalog.putCategory(tx, input));
  }

  getCategory(id: string) {
    return this.read((tx) => this.catalog.getCategory(tx, id));
  }

  listCategories() {
    return this.read((tx) => this.catalog.listCategories(tx));
  }

  setCalibration(id: string, calibration: unknown) {
    return this.write((tx) => this.catalog.setCalibration(tx, id, calibration));
  }

  deleteCategory(id: string) {
    return this.write((tx) => this.catalog.deleteCategory(tx, id));
  }

  addReferences(categoryId: string, references: NewReference[], options: AddReferencesOptions) {
    return this.write((tx) => this.catalog.addReferences(tx, categoryId, references, options));
  }

  listReferences(categoryId: string) {
    return this.read((tx) => this.catalog.listReferences(tx, categoryId));
  }

  getReferenceImage(categoryId: string, referenceId: string) {
    return this.read((tx) => this.catalog.getReferenceImage(tx, categoryId, referenceId));
  }

  deleteReference(categoryId: string, referenceId: string) {
    return this.write((tx) => this.catalog.deleteReference(tx, categoryId, referenceId));
  }

  loadFeatures(categoryId: string, featureKey: string) {
    return this.read((tx) => this.catalog.loadFeatures(tx, categoryId, featureKey));
  }

  categoriesNeedingFeatures(featureKey: string) {
    return this.read((tx) => this.catalog.categoriesNeedingFeatures(tx, featureKey));
  }

  replaceFeatures(categoryId: string, featureKey: string, features: ReferenceFeatures[]) {
    return this.write((tx) => this.catalog.replaceFeatures(tx, categoryId, featureKey, features));
  }

  recordDetection(detection: NewDetection, options: { image?: Buffer; event?: OutboxEventInput } = {}) {
    return this.write(async (tx) => {
      // The event first: it takes the enqueue lock and drops old events before this
      // transaction holds the detection image's blob row (see Outbox.enqueue).
      const event = options.event ? await this.outbox.enqueue(tx, options.event) : null;
      const record = await this.detections.insert(tx, detection, options.image);
      return { record, event };
    });
  }

  getDetection(id: string) {
    return this.read((tx) => this.detections.get(tx, id));
  }

  listDetections(query: DetectionQuery) {
    return this.read((tx) => this.detections.list(tx, query));
  }

  getDetectionImage(id: string) {
    return this.read((tx) => this.detections.image(tx, id));
  }

  setFeedback(id: string, feedback: { label: Verdict; note?: string | null; at?: Date }) {
    return this.write((tx) => this.detections.setFeedback(tx, id, feedback));
  }

  pruneDetections(policy: RetentionPolicy) {
    return this.write((tx) => this.detections.prune(tx, policy));
  }

  getBlob(sha256: string) {
    return this.read((tx) => readBlob(tx, sha256));
  }

  enqueueEvent(event: OutboxEventInput) {
    return this.write((tx) => this.outbox.enqueue(tx, event));
  }

  claimEvents(owner: string, options: ClaimOptions) {
    return this.write((tx) => this.outbox.claim(tx, owner, options));
  }

  markDelivered(eventId: string, sink?: string) {
    return this.write((tx) => this.outbox.markDelivered(tx, eventId, sink));
  }

  markFailed(eventId: string, owner: string, failure: EventFailure, sink?: string) {
    return this.write((tx) => this.outbox.markFailed(tx, eventId, owner, failure, sink));
  }

  giveUp(eventId: string, owner: string, sink?: string) {
    return this.write((tx) => this.outbox.giveUp(tx, eventId, owner, sink));
  }

  outboxStats() {
    return this.read((tx) => this.outbox.stats(tx));
  }

  getTextEmbedding(key: string) {
    return this.read(async (tx) => {
      const rows = await tx.all<{ vector: Buffer }>('SELECT vector FROM text_embeddings WHERE key = ?', [key]);
      const bytes = rows[0]?.vector;
      if (!bytes) return null;
      // Copy into an aligned buffer of its own: a driver's Buffer may sit at any byte offset.
      const out = new Float32Array(bytes.length / 4);
      Buffer.from(out.buffer).set(bytes);
      return out;
    });
  }

  putTextEmbedding(key: string, vector: Float32Array) {
    return this.write(async (tx) => {
      const bytes = Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength);
      await tx.run(
        'INSERT INTO text_embeddings (key, vector, created_at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET vector = excluded.vector',
        [key, bytes, this.ctx.clock()],
      );
    });
  }
}
