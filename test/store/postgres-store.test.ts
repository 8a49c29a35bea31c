// The shared store suite on PostgreSQL (127.0.0.1:5432, database test, trust auth), each
// location a fresh schema dropped after the run; plus what only PostgreSQL has: replicas
// migrating together, and a database that cannot be reached. Without a server the file skips,
// saying why.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../../src/store/errors.ts';
import { LATEST_VERSION } from '../../src/store/migrations.ts';
import { openStore } from '../../src/store/open-store.ts';
import {
  createPostgresPool,
  migratePostgres,
  openPostgresStore,
  PostgresBackend,
  type PostgresStoreOptions,
} from '../../src/store/postgres-store.ts';
import type { StoreHarness, StoreLocation } from './harness.ts';
import { storeSuite } from './store-suite.ts';
import { findPostgres } from '../support/postgres.ts';

const found = await findPostgres();

if ('reason' in found) {
  console.warn(`PostgreSQL store tests skipped: no PostgreSQL server answered (${found.reason})`);
  describe.skip('postgres store (no PostgreSQL server reachable)', () => {
    it('needs PostgreSQL at 127.0.0.1:5432, database test', () => {});
  });
} else {
  const url = found.url;
  const run = `store_test_${process.pid}_${randomBytes(3).toString('hex')}`;
  const schemas: string[] = [];
  const admin = new pg.Pool({ connectionString: url, max: 2 });
  admin.on('error', () => {});
  const newSchema = () => {
    const schema = `${run}_${schemas.length + 1}`;
    schemas.push(schema);
    return schema;
  };

  const location = (schema: string): StoreLocation => {
    const options = (): PostgresStoreOptions => ({ url, schema, poolSize: 4, applicationName: schema });
    const withBackend = async <T>(fn: (backend: PostgresBackend) => Promise<T>) => {
      const backend = new PostgresBackend(createPostgresPool(options()));
      try {
        return await fn(backend);
      } finally {
        await backend.close();
      }
    };
    return {
      open: (storeOptions) => openPostgresStore({ ...options(), ...storeOptions }),
      async migrateTo(version) {
        const pool = createPostgresPool(options());
        try {
          await migratePostgres(pool, { schema, target: version });
        } finally {
          await pool.end();
        }
      },
      sql: (sql, params = []) => withBackend((b) => b.transaction('write', (tx) => tx.all(sql, params))),
      indexNames: async () =>
        (await admin.query('SELECT indexname FROM pg_indexes WHERE schemaname = $1', [schema])).rows.map((r) => String(r.indexname)),
    };
  };

  const harness: StoreHarness = {
    backend: 'postgres',
    newLocation: async () => location(newSchema()),
    async cleanup() {
      for (const schema of schemas) await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await admin.end();
    },
  };

  storeSuite(harness);

  describe('postgres store: replicas and outages', () => {
    it('migrates once when several replicas start together', async () => {
      const schema = newSchema();
      const stores = await Promise.all(Array.from({ length: 4 }, () => openPostgresStore({ url, schema, poolSize: 2 })));
      try {
        for (const s of stores) expect(await s.schemaVersion()).toBe(LATEST_VERSION);
        const rows = await admin.query(`SELECT version FROM ${schema}.schema_version ORDER BY version`);
        expect(rows.rows.map((r) => r.version)).toEqual(Array.from({ length: LATEST_VERSION }, (_, i) => i + 1));
      } finally {
        await Promise.all(stores.map((s) => s.close()));
      }
    });

    it('is picked by openStore for postgres:// and postgresql:// URLs', async () => {
      const schema = newSchema();
      for (const u of [url, url.replace(/^postgres:/, 'postgresql:')]) {
        const store = await openStore({ url: u, dataDir: '/nonexistent', schema });
        expect(store.backend).toBe('postgres');
        await store.close();
      }
    });

    it('reports an unreachable database as StoreUnavailableError', async () => {
      const error = await openPostgresStore({ url: 'postgres://postgres@127.0.0.1:1/test', connectTimeoutMs: 2000 }).catch((e) => e);
      expect(error).toBeInstanceOf(StoreUnavailableError);
      expect(error.code).toBe('store_unavailable');
    });

    it('reports a connection the server terminates mid-transaction as StoreUnavailableError, then recovers', async () => {
      const schema = newSchema();
      const store = await openPostgresStore({ url, schema, poolSize: 2, applicationName: schema });
      const backend = new PostgresBackend(createPostgresPool({ url, schema, applicationName: schema }));
      try {
        let settled = false;
        const slow = backend
          .transaction('read', (tx) => tx.all('SELECT pg_sleep(10)'))
          .then(() => null, (e: unknown) => e)
          .finally(() => (settled = true));
        // End every connection of this test whenever the sleeping query shows up: the backend
        // retries once on a new connection, and then reports the outage.
        const sleepers = new Set<number>();
        for (let i = 0; i < 200 && !settled; i++) {
          const active = await admin.query("SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND query LIKE '%pg_sleep%'", [schema]);
          if (active.rowCount) {
            for (const r of active.rows) sleepers.add(r.pid);
            await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [schema]);
          }
          await new Promise((r) => setTimeout(r, 50));
        }
        expect(await slow).toBeInstanceOf(StoreUnavailableError);
        expect(sleepers.size).toBe(2); // the first connection and the one retry
        // The store's idle connections were terminated too: its next transaction gets a new one.
        await store.putCategory({ id: 'screw', name: 'screw', defaultMethod: 'winclip', targetFalseAlarmRate: 0.01, notes: '' });
        expect((await store.getCategory('screw'))?.name).toBe('screw');
      } finally {
        await backend.close();
        await store.close();
      }
    });

    it('applies the statement timeout and the TLS setting', async () => {
      const schema = newSchema();
      // One connection: the one the migration ran on (without a timeout), then given back.
      const pool = createPostgresPool({ url, schema, statementTimeoutMs: 100, poolSize: 1 });
      await migratePostgres(pool, { schema });
      const backend = new PostgresBackend(pool);
      try {
        const error = await backend.transaction('read', (tx) => tx.all('SELECT pg_sleep(2)')).catch((e) => e);
        expect(error).toMatchObject({ code: '57014' }); // query_canceled, not an outage
        expect(error).not.toBeInstanceOf(StoreUnavailableError);
      } finally {
        await backend.close();
      }
      const tls = await admin.query("SELECT current_setting('ssl') AS ssl");
      if (tls.rows[0].ssl === 'off') {
        // This server speaks no TLS: asking for it must fail rather than fall back to plain text.
        await expect(openPostgresStore({ url, schema, ssl: 'require', connectTimeoutMs: 2000 })).rejects.toThrow(/SSL/i);
      }
      const plain = await openPostgresStore({ url, schema, ssl: 'off' });
      expect(await plain.schemaVersion()).toBe(LATEST_VERSION);
      await plain.close();
    });
  });
}
