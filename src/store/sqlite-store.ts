// The embedded default store: <dataDir>/store.sqlite through better-sqlite3.
// WAL lets readers run beside the one writer; busy_timeout makes a second process (two servers
// on one data folder) wait for the write lock instead of failing; every write transaction is
// BEGIN IMMEDIATE, taking that lock up front, so no transaction fails on upgrading a read lock.
// better-sqlite3 is synchronous: statements block the event loop for their (short) duration.
// One queue per process runs SQLite transactions one after another: two transactions of one
// connection must not interleave, and a second connection's BEGIN IMMEDIATE, blocking the
// thread in busy_timeout while the first transaction waits for its turn on that same thread,
// would wait for nothing.
//
// Durability without an fsync on the event loop: with synchronous = FULL every COMMIT fsyncs
// the WAL on the calling thread, here the HTTP thread (1–2 ms per detection record on a fast
// disk, tens of ms on a busy one, and the requests behind it wait). Instead the connection runs
// at synchronous = NORMAL (a COMMIT writes the WAL without fsync) and a write transaction
// resolves only after the WAL file has been fsynced on libuv's thread pool (fsync flushes the
// file, whichever descriptor wrote it). So what resolved is on disk, as with FULL, and
// commits arriving while one fsync runs share the next (group commit).
import { mkdirSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { StoreSchemaError, StoreUnavailableError } from './errors.ts';
import { LATEST_VERSION, pendingMigrations, SCHEMA_VERSION_TABLE_SQL } from './migrations.ts';
import type { Row, SqlBackend, SqlTx } from './sql.ts';
import { SqlStore } from './sql-store.ts';
import type { CommonStoreOptions, Store } from './store.ts';

export interface SqliteStoreOptions extends CommonStoreOptions {
  /** The data folder; the database is <dataDir>/store.sqlite. Created when missing. */
  dataDir: string;
  /** How long to wait for another process's write lock before failing (default 10 s). */
  busyTimeoutMs?: number;
}

export const SQLITE_FILE = 'store.sqlite';

type Statement = Database.Statement<unknown[]>;

let processQueue: Promise<unknown> = Promise.resolve();

/** Runs fn after every SQLite transaction of this process queued before it. */
function serially<T>(fn: () => T | Promise<T>): Promise<T> {
  const result = processQueue.then(fn, fn);
  processQueue = result.catch(() => undefined);
  return result;
}

/** Dates become epoch milliseconds and booleans 0/1, the two types SQLite cannot bind. */
function bindable(params: readonly unknown[]): unknown[] {
  return params.map((p) => (p instanceof Date ? p.getTime() : typeof p === 'boolean' ? (p ? 1 : 0) : p === undefined ? null : p));
}

/** Busy past the timeout: another process holds the lock, so the store is unavailable for now. */
function mapError(err: unknown): unknown {
  const code = (err as { code?: unknown })?.code;
  if (typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'))) {
    return new StoreUnavailableError(`the SQLite store stayed locked by another process: ${(err as Error).message}`, { cause: err });
  }
  return err;
}

export class SqliteBackend implements SqlBackend {
  readonly name = 'sqlite' as const;
  readonly forUpdate = '';
  readonly skipLocked = '';
  private last: Promise<unknown> = Promise.resolve();
  private readonly statements = new Map<string, Statement>();
  private readonly tx: SqlTx;
  /** WAL fsyncs started (one per group of write transactions). */
  flushes = 0;
  private flushing: Promise<void> | undefined;
  private nextFlush: Promise<void> | undefined;

  constructor(readonly db: Database.Database) {
    this.tx = {
      all: async <T>(sql: string, params: readonly unknown[] = []) => {
        const stmt = this.prepare(sql);
        if (stmt.reader) return stmt.all(...bindable(params)) as T[];
        stmt.run(...bindable(params));
        return [];
      },
      run: async (sql, params = []) => this.prepare(sql).run(...bindable(params)).changes,
      lock: async () => {},
    };
  }

  private prepare(sql: string): Statement {
    let stmt = this.statements.get(sql);
    if (!stmt) {
      // IN lists make many shapes of one statement; keep the cache bounded.
      if (this.statements.size > 500) this.statements.clear();
      stmt = this.db.prepare(sql);
      this.statements.set(sql, stmt);
    }
    return stmt;
  }

  transaction<T>(mode: 'read' | 'write', fn: (tx: SqlTx) => Promise<T>): Promise<T> {
    const run = async () => {
      try {
        this.db.exec(mode === 'write' ? 'BEGIN IMMEDIATE' : 'BEGIN');
      } catch (err) {
        throw mapError(err);
      }
      try {
        const result = await fn(this.tx);
        this.db.exec('COMMIT');
        return result;
      } catch (err) {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        throw mapError(err);
      }
    };
    // The fsync is outside the queue: the next transaction need not wait for it.
    const result = serially(run).then(async (r) => (mode === 'write' && (await this.durable()), r));
    this.last = result.catch(() => undefined);
    return result;
  }

  /** Resolves once everything committed so far is on disk: the running fsync may have started before the last commit, so that one waits for the next. */
  durable(): Promise<void> {
    if (!this.flushing) {
      this.flushes++;
      return (this.flushing = fsyncWal(this.db.name).finally(() => (this.flushing = undefined)));
    }
    // After the running fsync, succeeded or not, a new one covers the commits since it began.
    this.nextFlush ??= this.flushing.catch(() => {}).then(() => ((this.nextFlush = undefined), this.durable()));
    return this.nextFlush;
  }

  parseJson(value: unknown): unknown {
    return JSON.parse(String(value));
  }

  async close(): Promise<void> {
    await this.last;
    this.db.close();
  }
}

/** fsync of `<database>-wal` (absent: nothing committed there to flush). */
async function fsyncWal(databaseFile: string): Promise<void> {
  let handle;
  try {
    handle = await open(`${databaseFile}-wal`, 'r+');
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return;
    throw err;
  }
  try {
    await handle.datasync();
  } finally {
    await handle.close();
  }
}

/**
 * Switching a new file to WAL takes a lock SQLite does not wait for with busy_timeout: a second
 * process opening the same fresh folder at that moment gets SQLITE_BUSY at once. Retried here
 * (synchronously, as opening is) until the busy timeout.
 */
function enableWal(db: Database.Database, busyTimeoutMs: number): void {
  const deadline = Date.now() + busyTimeoutMs;
  for (;;) {
    try {
      db.pragma('journal_mode = WAL');
      return;
    } catch (err) {
      if ((err as { code?: string }).code !== 'SQLITE_BUSY' || Date.now() >= deadline) throw err;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
    }
  }
}

/** Opens the database file with the settings every connection needs. */
export function openSqliteDatabase(dataDir: string, busyTimeoutMs = 10_000): Database.Database {
  mkdirSync(dataDir, { recursive: true });
  const db = new Database(join(dataDir, SQLITE_FILE));
  try {
    db.pragma(`busy_timeout = ${Math.max(0, Math.floor(busyTimeoutMs))}`);
    enableWal(db, busyTimeoutMs);
    // NORMAL: no fsync per COMMIT on this thread; SqliteBackend fsyncs the WAL off the event
    // loop before a write resolves, so a committed outbox event still survives a power cut.
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
  } catch (err) {
    db.close();
    throw mapError(err);
  }
  return db;
}

/**
 * Brings the schema to `target` (default: the latest) inside one exclusive transaction, so of
 * two processes starting together one migrates and the other then finds nothing to do.
 */
export function migrateSqlite(db: Database.Database, target = LATEST_VERSION): number {
  const migrate = db.transaction(() => {
    db.exec(SCHEMA_VERSION_TABLE_SQL);
    const current = Number((db.prepare('SELECT MAX(version) AS v FROM schema_version').get() as Row).v ?? 0);
    if (current > LATEST_VERSION) throw new StoreSchemaError(current, LATEST_VERSION);
    const insert = db.prepare('INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)');
    for (const m of pendingMigrations(current, target)) {
      db.exec(m.sqlite);
      insert.run(m.version, m.description, new Date().toISOString());
    }
    return Math.max(current, Math.min(target, LATEST_VERSION));
  });
  try {
    return migrate.exclusive();
  } catch (err) {
    throw mapError(err);
  }
}

export async function openSqliteStore(options: SqliteStoreOptions): Promise<Store> {
  const db = openSqliteDatabase(options.dataDir, options.busyTimeoutMs);
  const backend = new SqliteBackend(db);
  try {
    await serially(() => migrateSqlite(db));
    await backend.durable();
  } catch (err) {
    db.close();
    throw err;
  }
  return new SqlStore(backend, options);
}
