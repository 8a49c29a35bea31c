// The schema, as an ordered list of migrations (version + SQL per backend). A store applies
// every version above the one its schema_version table records, each in the transaction that
// records it, so a store from any earlier build catches up. Never edit a released migration:
// add the next one.
//
// Types: SQLite keeps times as epoch milliseconds and JSON as text; PostgreSQL uses timestamptz,
// jsonb and bytea. Features are bytea, not a vector type: nearest-neighbour search over patch
// memories runs in the worker on fp16 arrays, the database only stores and returns them.
// The outbox payload is text on both, so the bytes delivered are exactly the bytes enqueued.

export interface Migration {
  version: number;
  description: string;
  sqlite: string;
  postgres: string;
}

const v1Sqlite = `
CREATE TABLE categories (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  default_method TEXT NOT NULL,
  target_false_alarm_rate REAL NOT NULL,
  notes TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  calibration TEXT
);
CREATE TABLE category_references (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  category_id TEXT NOT NULL REFERENCES categories(id) ON DELETE CASCADE,
  width INTEGER NOT NULL,
  height INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  sha256 TEXT NOT NULL,
  added_at INTEGER NOT NULL,
  thumbnail BLOB NOT NULL,
  image BLOB
);
CREATE INDEX category_references_category ON category_references(category_id, seq);
CREATE TABLE reference_features (
  reference_id TEXT NOT NULL REFERENCES category_references(id) ON DELETE CASCADE,
  feature_key TEXT NOT NULL,
  shape TEXT NOT NULL,
  data BLOB NOT NULL,
  PRIMARY KEY (reference_id, feature_key)
);
CREATE TABLE blobs (
  sha256 TEXT PRIMARY KEY,
  data BLOB NOT NULL,
  bytes INTEGER NOT NULL,
  refs INTEGER NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE detections (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  detected_at INTEGER NOT NULL,
  category_id TEXT REFERENCES categories(id) ON DELETE SET NULL,
  category TEXT NOT NULL,
  method TEXT NOT NULL,
  score REAL NOT NULL,
  is_anomalous INTEGER NOT NULL,
  threshold REAL NOT NULL,
  threshold_source TEXT NOT NULL,
  summary TEXT NOT NULL,
  metadata TEXT NOT NULL,
  image_sha256 TEXT REFERENCES blobs(sha256),
  feedback_label TEXT,
  feedback_note TEXT,
  feedback_at INTEGER
);
CREATE INDEX detections_category ON detections(category_id, seq);
CREATE INDEX detections_time ON detections(detected_at);
CREATE TABLE outbox (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL,
  payload TEXT NOT NULL,
  image_sha256 TEXT REFERENCES blobs(sha256),
  bytes INTEGER NOT NULL,
  attempt INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  lease_owner TEXT,
  lease_expires_at INTEGER,
  last_error TEXT
);
CREATE INDEX outbox_due ON outbox(next_attempt_at, seq);
CREATE TABLE store_counters (
  name TEXT PRIMARY KEY,
  value INTEGER NOT NULL
);
CREATE TABLE text_embeddings (
  key TEXT PRIMARY KEY,
  vector BLOB NOT NULL,
  created_at INTEGER NOT NULL
);
`;

const v1Postgres = `
CREATE TABLE categories (
  id text PRIMARY KEY,
  name text NOT NULL,
  default_method text NOT NULL,
  target_false_alarm_rate double precision NOT NULL,
  notes text NOT NULL,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  calibration jsonb
);
CREATE TABLE category_references (
  seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  id text NOT NULL UNIQUE,
  category_id text NOT NULL REFERENCES categories(id) ON DELETE CASCADE,
  width integer NOT NULL,
  height integer NOT NULL,
  bytes integer NOT NULL,
  sha256 text NOT NULL,
  added_at timestamptz NOT NULL,
  thumbnail bytea NOT NULL,
  image bytea
);
CREATE INDEX category_references_category ON category_references(category_id, seq);
CREATE TABLE reference_features (
  reference_id text NOT NULL REFERENCES category_references(id) ON DELETE CASCADE,
  feature_key text NOT NULL,
  shape jsonb NOT NULL,
  data bytea NOT NULL,
  PRIMARY KEY (reference_id, feature_key)
);
CREATE TABLE blobs (
  sha256 text PRIMARY KEY,
  data bytea NOT NULL,
  bytes integer NOT NULL,
  refs integer NOT NULL,
  created_at timestamptz NOT NULL
);
CREATE TABLE detections (
  seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  id text NOT NULL UNIQUE,
  detected_at timestamptz NOT NULL,
  category_id text REFERENCES categories(id) ON DELETE SET NULL,
  category text NOT NULL,
  method text NOT NULL,
  score double precision NOT NULL,
  is_anomalous boolean NOT NULL,
  threshold double precision NOT NULL,
  threshold_source text NOT NULL,
  summary text NOT NULL,
  metadata jsonb NOT NULL,
  image_sha256 text REFERENCES blobs(sha256),
  feedback_label text,
  feedback_note text,
  feedback_at timestamptz
);
CREATE INDEX detections_category ON detections(category_id, seq);
CREATE INDEX detections_time ON detections(detected_at);
CREATE TABLE outbox (
  seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  id text NOT NULL UNIQUE,
  created_at timestamptz NOT NULL,
  payload text NOT NULL,
  image_sha256 text REFERENCES blobs(sha256),
  bytes integer NOT NULL,
  attempt integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL,
  lease_owner text,
  lease_expires_at timestamptz,
  last_error text
);
CREATE INDEX outbox_due ON outbox(next_attempt_at, seq);
CREATE TABLE store_counters (
  name text PRIMARY KEY,
  value bigint NOT NULL
);
CREATE TABLE text_embeddings (
  key text PRIMARY KEY,
  vector bytea NOT NULL,
  created_at timestamptz NOT NULL
);
`;

export const MIGRATIONS: readonly Migration[] = [
  { version: 1, description: 'categories, references, features, detections, blobs, outbox, text embeddings', sqlite: v1Sqlite, postgres: v1Postgres },
  {
    // Anomalies are rare: listing a category's anomalous detections through
    // detections_category alone walks every normal one first.
    version: 2,
    description: 'index for listing detections by category and verdict',
    sqlite: 'CREATE INDEX detections_category_verdict ON detections(category_id, is_anomalous, seq);',
    postgres: 'CREATE INDEX detections_category_verdict ON detections(category_id, is_anomalous, seq);',
  },
  {
    // One outbox row per (sink, event): with webhooks and MQTT both configured an event has a
    // row for each, so each sink claims, retries, gives up and counts on its own; the event id
    // stays the receivers' idempotency key. Rows of earlier builds are webhook rows.
    version: 3,
    description: 'outbox rows per delivery sink (webhook, mqtt)',
    sqlite: `
CREATE TABLE outbox_v3 (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  sink TEXT NOT NULL DEFAULT 'webhook',
  id TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  payload TEXT NOT NULL,
  image_sha256 TEXT REFERENCES blobs(sha256),
  bytes INTEGER NOT NULL,
  attempt INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  lease_owner TEXT,
  lease_expires_at INTEGER,
  last_error TEXT,
  UNIQUE (sink, id)
);
INSERT INTO outbox_v3 (seq, sink, id, created_at, payload, image_sha256, bytes, attempt, next_attempt_at, lease_owner, lease_expires_at, last_error)
  SELECT seq, 'webhook', id, created_at, payload, image_sha256, bytes, attempt, next_attempt_at, lease_owner, lease_expires_at, last_error FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_v3 RENAME TO outbox;
CREATE INDEX outbox_due ON outbox(sink, next_attempt_at, seq);
`,
    postgres: `
ALTER TABLE outbox ADD COLUMN sink text NOT NULL DEFAULT 'webhook';
ALTER TABLE outbox DROP CONSTRAINT outbox_id_key;
ALTER TABLE outbox ADD CONSTRAINT outbox_sink_id_key UNIQUE (sink, id);
DROP INDEX outbox_due;
CREATE INDEX outbox_due ON outbox(sink, next_attempt_at, seq);
`,
  },
];

export const LATEST_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/** The migrations to apply to a store at `current` to reach `target`, in order. */
export function pendingMigrations(current: number, target = LATEST_VERSION): Migration[] {
  return MIGRATIONS.filter((m) => m.version > current && m.version <= target);
}

export const SCHEMA_VERSION_TABLE_SQL =
  'CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL)';
