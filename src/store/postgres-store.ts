// The PostgreSQL store, for several replicas sharing one database (STORE_URL=postgres://…).
// Migrations run at start-up under a session advisory lock, so of replicas starting together
// one migrates and the others wait and find nothing to do. Features and images are bytea, not
// a vector type: nearest-neighbour search over patch memories runs in the worker on fp16
// arrays, the database only stores and returns them.
import pg from 'pg';
import { StoreSchemaError, StoreUnavailableError } from './errors.ts';
import { LATEST_VERSION, pendingMigrations, SCHEMA_VERSION_TABLE_SQL } from './migrations.ts';
import type { SqlBackend, SqlTx } from './sql.ts';
import { SqlStore } from './sql-store.ts';
import type { CommonStoreOptions, Store } from './store.ts';

export interface PostgresStoreOptions extends CommonStoreOptions {
  /** postgres://user:password@host:port/database[?sslmode=…]; the URL's sslmode wins over `ssl`. */
  url: string;
  /** Connections per process (default 10). */
  poolSize?: number;
  /** Server-side limit per statement (default 30 s); 0 turns it off. */
  statementTimeoutMs?: number;
  /**
   * TLS: 'off' (plain), 'on' (encrypted, server certificate verified), 'require' (encrypted,
   * certificate not verified, like libpq's sslmode=require). Default: what the URL says.
   */
  ssl?: 'on' | 'off' | 'require';
  /** Schema for the tables (search_path), created when missing; default: the server's. */
  schema?: string;
  /** How long to wait for a connection before StoreUnavailableError (default 10 s). */
  connectTimeoutMs?: number;
  /** Shown in pg_stat_activity (default clip-anomaly-service). */
  applicationName?: string;
}

const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE']);
// admin_shutdown, crash_shutdown, cannot_connect_now, too_many_connections.
const UNAVAILABLE_SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300']);
const CONNECTION_MESSAGES = /connection terminated|not queryable|timeout exceeded when trying to connect|connection ended/i;
// Deadlock and serialisation failures: the whole transaction is safe to run again.
const RETRYABLE_SQLSTATES = new Set(['40P01', '40001']);

function isConnectionError(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown };
  if (typeof e?.code === 'string' && (CONNECTION_CODES.has(e.code) || UNAVAILABLE_SQLSTATES.has(e.code) || e.code.startsWith('08'))) return true;
  if (err instanceof AggregateError) return err.errors.some(isConnectionError);
  return typeof e?.message === 'string' && CONNECTION_MESSAGES.test(e.message);
}

/** Connection failures become StoreUnavailableError (503 store_unavailable); the rest pass. */
export function mapPgError(err: unknown): unknown {
  if (err instanceof StoreUnavailableError || !isConnectionError(err)) return err;
  const message = err instanceof Error && err.message ? err.message : String((err as { code?: unknown })?.code ?? err);
  return new StoreUnavailableError(`the PostgreSQL store cannot be reached: ${message}`, { cause: err });
}

/** `?` placeholders to `$1, $2, …` (quoted literals left alone). */
export function numberPlaceholders(sql: string): string {
  let n = 0;
  let quoted = false;
  let out = '';
  for (const ch of sql) {
    if (ch === "'") quoted = !quoted;
    out += ch === '?' && !quoted ? `$${++n}` : ch;
  }
  return out;
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

export function createPostgresPool(options: PostgresStoreOptions): pg.Pool {
  if (options.schema !== undefined && !IDENTIFIER.test(options.schema)) {
    throw new Error(`schema ${JSON.stringify(options.schema)} must be letters, digits and _ (not starting with a digit)`);
  }
  const ssl = options.ssl === undefined ? undefined : options.ssl === 'off' ? false : { rejectUnauthorized: options.ssl === 'on' };
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.poolSize ?? 10,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000,
    idleTimeoutMillis: 30_000,
    statement_timeout: options.statementTimeoutMs ?? 30_000,
    application_name: options.applicationName ?? 'clip-anomaly-service',
    ...(ssl === undefined ? {} : { ssl }),
    ...(options.schema ? { options: `-c search_path=${options.schema}` } : {}),
  });
  // An idle connection the server dropped: the pool discards it and the next query opens a
  // new one (or reports StoreUnavailableError). Without a listener it would crash the process.
  pool.on('error', () => {});
  return pool;
}

export class PostgresBackend implements SqlBackend {
  readonly name = 'postgres' as const;
  readonly forUpdate = ' FOR UPDATE';
  readonly skipLocked = ' FOR UPDATE SKIP LOCKED';

  constructor(readonly pool: pg.Pool) {}

  private txFor(client: pg.PoolClient): SqlTx {
    return {
      all: async <T>(sql: string, params: readonly unknown[] = []) =>
        (await client.query(numberPlaceholders(sql), params as unknown[])).rows as T[],
      run: async (sql, params = []) => (await client.query(numberPlaceholders(sql), params as unknown[])).rowCount ?? 0,
      lock: async (name) => {
        await client.query('SELECT pg_advisory_xact_lock(hashtext($1), hashtext(current_schema()))', [`clip-anomaly-store:${name}`]);
      },
    };
  }

  async transaction<T>(mode: 'read' | 'write', fn: (tx: SqlTx) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      let client: pg.PoolClient;
      try {
        client = await this.pool.connect();
      } catch (err) {
        throw mapPgError(err);
      }
      // A checked-out connection that fails between two queries emits 'error' on the client;
      // the next query then rejects, which is where it is reported.
      const ignore = () => {};
      client.on('error', ignore);
      let committing = false;
      try {
        await client.query(mode === 'read' ? 'BEGIN READ ONLY' : 'BEGIN');
        const result = await fn(this.txFor(client));
        committing = true;
        await client.query('COMMIT');
        client.off('error', ignore);
        client.release();
        return result;
      } catch (err) {
        const broken = isConnectionError(err);
        if (!broken) await client.query('ROLLBACK').catch(() => undefined);
        client.off('error', ignore);
        // A broken connection is destroyed rather than returned to the pool.
        client.release(broken ? (err as Error) : undefined);
        const code = (err as { code?: unknown })?.code;
        if (typeof code === 'string' && RETRYABLE_SQLSTATES.has(code) && attempt < 3) continue;
        // A pooled connection the server dropped while idle (a restart, a failover) fails on
        // first use: once, on a new connection. Before COMMIT was sent the server rolled the
        // transaction back, so running it again is safe; a failed COMMIT may have committed.
        if (broken && !committing && attempt === 1) continue;
        throw mapPgError(err);
      }
    }
  }

  parseJson(value: unknown): unknown {
    return value; // jsonb arrives parsed
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

/**
 * Brings the schema to `target` (default: the latest) in one transaction, holding a session
 * advisory lock keyed by the schema so concurrent start-ups migrate once.
 */
export async function migratePostgres(pool: pg.Pool, options: { schema?: string; target?: number } = {}): Promise<number> {
  const client = await pool.connect().catch((err: unknown) => {
    throw mapPgError(err);
  });
  client.on('error', () => {});
  let locked = false;
  let broken: Error | undefined;
  try {
    const key = ['clip-anomaly-store:migrate', options.schema ?? ''];
    // Waiting for another replica's migration, or building an index on a large table, may
    // take longer than the statement timeout; RESET below restores it for the pool.
    await client.query('SET statement_timeout = 0');
    await client.query('SELECT pg_advisory_lock(hashtext($1), hashtext($2))', key);
    locked = true;
    await client.query('BEGIN');
    try {
      if (options.schema) await client.query(`CREATE SCHEMA IF NOT EXISTS ${options.schema}`);
      await client.query(SCHEMA_VERSION_TABLE_SQL);
      const current = Number((await client.query('SELECT MAX(version) AS v FROM schema_version')).rows[0].v ?? 0);
      if (current > LATEST_VERSION) throw new StoreSchemaError(current, LATEST_VERSION);
      const target = options.target ?? LATEST_VERSION;
      for (const m of pendingMigrations(current, target)) {
        await client.query(m.postgres);
        await client.query('INSERT INTO schema_version (version, description, applied_at) VALUES ($1, $2, $3)', [
          m.version,
          m.description,
          new Date().toISOString(),
        ]);
      }
      await client.query('COMMIT');
      return Math.max(current, Math.min(target, LATEST_VERSION));
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  } catch (err) {
    if (isConnectionError(err)) broken = err as Error;
    throw mapPgError(err);
  } finally {
    // Ending the session would drop the lock too; a broken one is destroyed below.
    if (!broken) {
      if (locked) await client.query('SELECT pg_advisory_unlock(hashtext($1), hashtext($2))', ['clip-anomaly-store:migrate', options.schema ?? '']).catch(() => undefined);
      await client.query('RESET statement_timeout').catch(() => undefined);
    }
    client.release(broken);
  }
}

export async function openPostgresStore(options: PostgresStoreOptions): Promise<Store> {
  const pool = createPostgresPool(options);
  try {
    await migratePostgres(pool, { schema: options.schema });
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw err;
  }
  return new SqlStore(new PostgresBackend(pool), options);
}
