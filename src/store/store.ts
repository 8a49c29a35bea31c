// The service's persistent store: what it remembers between requests and across replicas.
// One interface, two backends (SQLite in a data folder, PostgreSQL for several replicas).
// Every method is async so a networked database fits; every write is one transaction.
// Times are Dates in and out (the HTTP layer writes ISO strings); JSON fields are any
// JSON-serialisable value, stored and given back as parsed values.

export type Verdict = 'anomalous' | 'normal';

/** What PUT /v1/categories/{id} stores; the HTTP layer fills the defaults. */
export interface CategoryInput {
  /** NFC-normalised by the store on every call, so composed and decomposed forms are one id. */
  id: string;
  /** Prompt text. */
  name: string;
  defaultMethod: string;
  targetFalseAlarmRate: number;
  notes: string;
}

export interface CategoryRecord extends CategoryInput {
  createdAt: Date;
  updatedAt: Date;
  /** The last calibration result (a JSON object), or null until calibrated. */
  calibration: unknown | null;
  referenceCount: number;
}

/** Features of one reference for one featureKey (checkpoint + settings that produced them). */
export interface FeatureInput {
  featureKey: string;
  /** Small JSON descriptor of how `data` is laid out (e.g. layers, patches, dims, dtype). */
  shape: unknown;
  /** Opaque bytes the caller packed (fp16 arrays). */
  data: Buffer;
}

export interface NewReference {
  /** A uuid; generated when absent. */
  id?: string;
  width: number;
  height: number;
  /** The encoded image: its size and sha256 are always recorded, the bytes only with keepImages. */
  image: Buffer;
  /** Small JPEG for the listing (≤ 96 px side). */
  thumbnail: Buffer;
  features: FeatureInput[];
}

export interface AddReferencesOptions {
  /** Most references a category may hold; checked inside the transaction. */
  limit: number;
  /** Store the encoded image (default true). Without it a new checkpoint cannot re-embed them. */
  keepImages?: boolean;
}

/** A reference as listed: no image and no features. */
export interface ReferenceRecord {
  id: string;
  categoryId: string;
  width: number;
  height: number;
  /** Size of the encoded image. */
  bytes: number;
  /** Hex sha256 of the encoded image. */
  sha256: string;
  addedAt: Date;
  thumbnail: Buffer;
  hasImage: boolean;
}

export interface ReferenceFeatures {
  referenceId: string;
  shape: unknown;
  data: Buffer;
}

export interface NewDetection {
  /** A uuid; generated when absent. */
  id?: string;
  /** Defaults to the store clock's now. */
  time?: Date;
  /** The stored category used, or null for a zero-shot request. */
  categoryId: string | null;
  /** The category text of the request (kept when the stored category is deleted). */
  category: string;
  method: string;
  score: number;
  isAnomalous: boolean;
  threshold: number;
  thresholdSource: string;
  summary: string;
  metadata: Record<string, string>;
}

export interface Feedback {
  label: Verdict;
  note: string | null;
  at: Date;
}

/** A stored detection: what was recorded, with its id and time fixed and the feedback given since. */
export interface DetectionRecord extends Omit<NewDetection, 'id' | 'time'> {
  id: string;
  time: Date;
  /** The stored image's hash (a blob), or null when the image was not kept. */
  imageSha256: string | null;
  feedback: Feedback | null;
}

export interface DetectionQuery {
  /** Detections that used this stored category; null: only zero-shot ones (no stored category). */
  categoryId?: string | null;
  /** Detections whose category text is this (zero-shot ones included). */
  category?: string;
  verdict?: Verdict;
  limit: number;
}

/** Either bound may be left out; both apply when given. */
export interface RetentionPolicy {
  maxCount?: number;
  maxAgeDays?: number;
}

export interface OutboxEventInput {
  /** Defaults to a new uuid; the id a receiver deduplicates on. */
  id?: string;
  /** The JSON event, stored as the exact text JSON.stringify gives. */
  payload: unknown;
  /** An image to deliver with the event (e.g. the overlay PNG), kept once as a blob. */
  image?: Buffer;
  /** The sinks that deliver it, one outbox row each (default: webhook). */
  sinks?: string[];
}

/**
 * Outbox byte bound policy: when an event does not fit, the OLDEST undelivered events are
 * dropped (and counted) to make room: after an outage the receiver gets the recent anomalies,
 * the actionable ones. An event larger than the whole bound is refused (and counted).
 */
export interface EnqueueResult {
  queued: boolean;
  /** The event's id when queued, else null. */
  eventId: string | null;
  /** Events dropped by this enqueue (older ones, or this one when refused). */
  dropped: number;
  /** The ids of the older events dropped (at most 20), for the log line that says which were lost. */
  droppedEvents?: string[];
}

export interface ClaimOptions {
  limit: number;
  /** How long the claim is exclusive; after it another owner may claim the event. */
  leaseMs: number;
  /** Whose rows to claim (default: webhook). */
  sink?: string;
}

export interface ClaimedEvent {
  id: string;
  sink: string;
  payload: unknown;
  image: Buffer | null;
  imageSha256: string | null;
  /** Failed attempts so far. */
  attempt: number;
  createdAt: Date;
  leaseExpiresAt: Date;
  lastError: string | null;
}

export interface EventFailure {
  /** Failed attempts including this one. */
  attempt: number;
  /** When the event is due again (the caller's backoff). */
  nextAttemptAt: Date;
  error: string;
}

export interface OutboxStats {
  /** Undelivered events (leased ones included). */
  pending: number;
  /** Bytes of undelivered events: payload text + image, what delivering them sends. */
  pendingBytes: number;
  maxBytes: number;
  /** Events dropped by the byte bound, ever. */
  dropped: number;
  /** Events given up after their last attempt, ever. */
  gaveUp: number;
  delivered: number;
}

export interface StoreStats {
  categories: number;
  references: number;
  detections: number;
  blobs: number;
  blobBytes: number;
}

/** Options every backend takes. */
export interface CommonStoreOptions {
  /** Byte bound of undelivered outbox events (default 256 MiB). */
  outboxMaxBytes?: number;
  /** Where "now" comes from (tests move it; replicas need synchronised clocks for leases). */
  clock?: () => Date;
}

export interface Store {
  readonly backend: 'sqlite' | 'postgres';
  /** Resolves when the store answers; throws StoreUnavailableError when it cannot be reached. */
  ping(): Promise<void>;
  schemaVersion(): Promise<number>;
  stats(): Promise<StoreStats>;
  close(): Promise<void>;

  /** Creates or updates; calibration and createdAt survive an update. */
  putCategory(input: CategoryInput): Promise<{ category: CategoryRecord; created: boolean }>;
  getCategory(id: string): Promise<CategoryRecord | null>;
  /** Ordered by id. */
  listCategories(): Promise<CategoryRecord[]>;
  /** Null when the category does not exist. */
  setCalibration(id: string, calibration: unknown | null): Promise<CategoryRecord | null>;
  /** Deletes its references and features; its detections keep the category text, categoryId null. */
  deleteCategory(id: string): Promise<boolean>;

  /**
   * Adds all references with their features in one transaction, or none: throws
   * CategoryNotFoundError, or ReferenceLimitError when count + new would pass the limit. An image
   * the category already holds (by sha256), or one given twice, is added once: the result lists
   * only the references stored.
   */
  addReferences(categoryId: string, references: NewReference[], options: AddReferencesOptions): Promise<ReferenceRecord[]>;
  /** In insertion order. */
  listReferences(categoryId: string): Promise<ReferenceRecord[]>;
  /** Null when the reference is unknown or its image was not kept. */
  getReferenceImage(categoryId: string, referenceId: string): Promise<Buffer | null>;
  deleteReference(categoryId: string, referenceId: string): Promise<boolean>;
  /** The features of every reference that has some for featureKey, in insertion order. */
  loadFeatures(categoryId: string, featureKey: string): Promise<ReferenceFeatures[]>;
  /** Ids of categories with at least one reference lacking features for featureKey. */
  categoriesNeedingFeatures(featureKey: string): Promise<string[]>;
  /**
   * Replaces the category's features for featureKey with these, in one transaction; entries for
   * references deleted meanwhile are skipped. Returns how many were written.
   */
  replaceFeatures(categoryId: string, featureKey: string, features: ReferenceFeatures[]): Promise<number>;

  /** Inserts the detection, its image blob and (optionally) its outbox event in one transaction. */
  recordDetection(
    detection: NewDetection,
    options?: { image?: Buffer; event?: OutboxEventInput },
  ): Promise<{ record: DetectionRecord; event: EnqueueResult | null }>;
  getDetection(id: string): Promise<DetectionRecord | null>;
  /** Newest first (by insertion). */
  listDetections(query: DetectionQuery): Promise<DetectionRecord[]>;
  getDetectionImage(id: string): Promise<Buffer | null>;
  /** `at` defaults to now; null when the detection does not exist. */
  setFeedback(id: string, feedback: { label: Verdict; note?: string | null; at?: Date }): Promise<DetectionRecord | null>;
  /** Deletes the oldest detections past either bound; returns how many. Call it periodically. */
  pruneDetections(policy: RetentionPolicy): Promise<number>;

  /** A content-addressed image by hex sha256; blobs go when nothing refers to them. */
  getBlob(sha256: string): Promise<Buffer | null>;

  enqueueEvent(event: OutboxEventInput): Promise<EnqueueResult>;
  /**
   * Claims up to `limit` due events (oldest first) whose lease is free or expired. With
   * PostgreSQL, concurrent claimers never get the same event while its lease holds.
   */
  claimEvents(owner: string, options: ClaimOptions): Promise<ClaimedEvent[]>;
  /** Removes the sink's row of the event (whoever holds the lease: delivered is delivered); sink defaults to webhook. */
  markDelivered(eventId: string, sink?: string): Promise<boolean>;
  /** Releases the lease for a later retry; false when `owner` no longer holds the event. */
  markFailed(eventId: string, owner: string, failure: EventFailure, sink?: string): Promise<boolean>;
  /**
   * Final failure: removes the event and counts it (the caller logs why); false when `owner`
   * no longer holds it.
   */
  giveUp(eventId: string, owner: string, sink?: string): Promise<boolean>;
  outboxStats(): Promise<OutboxStats>;

  /** Cache of text embeddings, shared by every replica on the store. */
  getTextEmbedding(key: string): Promise<Float32Array | null>;
  putTextEmbedding(key: string, vector: Float32Array): Promise<void>;
}
