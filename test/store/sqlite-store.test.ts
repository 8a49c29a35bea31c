// The shared store suite on SQLite, plus what only SQLite has: two server processes on one
// data folder.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LATEST_VERSION } from '../../src/store/migrations.ts';
import { openStore } from '../../src/store/open-store.ts';
import { migrateSqlite, openSqliteDatabase, openSqliteStore, SqliteBackend } from '../../src/store/sqlite-store.ts';
import { category, reference, type StoreHarness, type StoreLocation } from './harness.ts';
import { storeSuite } from './store-suite.ts';

const root = mkdtempSync(join(tmpdir(), 'store-sqlite-'));
let made = 0;

function location(dataDir: string): StoreLocation {
  const withBackend = async <T>(fn: (backend: SqliteBackend) => Promise<T>) => {
    const backend = new SqliteBackend(openSqliteDatabase(dataDir));
    try {
      return await fn(backend);
    } finally {
      await backend.close();
    }
  };
  return {
    open: (options) => openSqliteStore({ ...options, dataDir }),
    async migrateTo(version) {
      const db = openSqliteDatabase(dataDir);
      try {
        migrateSqlite(db, version);
      } finally {
        db.close();
      }
    },
    sql: (sql, params = []) => withBackend((b) => b.transaction('write', (tx) => tx.all(sql, params))),
    indexNames: () =>
      withBackend(async (b) =>
        (await b.transaction('read', (tx) => tx.all("SELECT name FROM sqlite_master WHERE type = 'index'"))).map((r) => String(r.name)),
      ),
  };
}

const harness: StoreHarness = {
  backend: 'sqlite',
  async newLocation() {
    return location(join(root, `store-${++made}`));
  },
  async cleanup() {
    rmSync(root, { recursive: true, force: true });
  },
};

storeSuite(harness);

describe('SQLite durability', () => {
  it('runs at synchronous = NORMAL and resolves a write only after a WAL fsync, one fsync per group of concurrent writes', async () => {
    const dataDir = join(root, `store-${++made}`);
    const backend = new SqliteBackend(openSqliteDatabase(dataDir));
    try {
      expect(backend.db.pragma('synchronous', { simple: true })).toBe(1); // NORMAL
      await backend.transaction('write', (tx) => tx.run('CREATE TABLE t (v INTEGER)'));
      expect(backend.flushes).toBe(1);
      // A read needs no flush.
      await backend.transaction('read', (tx) => tx.all('SELECT * FROM t'));
      expect(backend.flushes).toBe(1);
      // 50 writes queued together: each resolves after a flush that began after its COMMIT,
      // and they share a few.
      const seen: number[] = [];
      await Promise.all(Array.from({ length: 50 }, (_, i) => backend.transaction('write', (tx) => tx.run('INSERT INTO t VALUES (?)', [i])).then(() => seen.push(backend.flushes))));
      expect(seen.every((n) => n >= 2)).toBe(true);
      expect(backend.flushes).toBeLessThan(10);
      expect((await backend.transaction('read', (tx) => tx.all('SELECT COUNT(*) AS n FROM t')))[0].n).toBe(50);
    } finally {
      await backend.close();
    }
  });
});

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs a fixture script as its own server process, the way `npm start` runs the server. */
function runFixture(script: string, args: string[]): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'fixtures', script), ...args], {
      cwd: join(import.meta.dirname, '..', '..'),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

describe('sqlite store: two processes on one data folder', () => {
  it('both start on an empty folder, migrate once, and write concurrently without losing anything', async () => {
    const dataDir = join(root, 'two-processes');
    const barrier = mkdtempSync(join(root, 'barrier-'));
    const count = 40;
    const writer = (tag: string) => runFixture('sqlite-writer.ts', [dataDir, tag, String(count), barrier, '2']);
    const [a, b] = await Promise.all([writer('a'), writer('b')]);
    expect(a.stderr + b.stderr).toBe('');
    expect([a.code, b.code]).toEqual([0, 0]);
    // Both were opening and writing at the same time.
    const [ra, rb] = [JSON.parse(a.stdout), JSON.parse(b.stdout)];
    expect(Math.max(ra.start, rb.start)).toBeLessThan(Math.min(ra.end, rb.end));

    const store = await openSqliteStore({ dataDir });
    try {
      expect(await store.schemaVersion()).toBe(LATEST_VERSION);
      expect((await location(dataDir).sql('SELECT version FROM schema_version')).length).toBe(LATEST_VERSION);
      expect(await store.stats()).toMatchObject({ categories: 1, references: 2 * count, detections: 2 * count, blobs: 1 });
      expect((await store.outboxStats()).pending).toBe(2 * count);
      const summaries = new Set((await store.listDetections({ limit: 1000 })).map((d) => d.summary));
      expect(summaries).toEqual(new Set(['a', 'b'].flatMap((tag) => Array.from({ length: count }, (_, i) => `${tag}${i}`))));
      // The image both processes referred to is counted right: it goes with the last reference.
      await store.pruneDetections({ maxCount: 0 });
      for (const e of await store.claimEvents('w', { limit: 1000, leaseMs: 1000 })) await store.markDelivered(e.id);
      expect((await store.stats()).blobs).toBe(0);
    } finally {
      await store.close();
    }
  });
});

describe('sqlite store: crashes and selection', () => {
  it('leaves a category as it was when the process dies in the middle of an upload', async () => {
    const dataDir = join(root, 'crash');
    const before = await openSqliteStore({ dataDir });
    await before.putCategory(category('screw'));
    const [kept] = await before.addReferences('screw', [reference('kept')], { limit: 100 });
    await before.close();

    const crash = await runFixture('sqlite-crash.ts', [dataDir]);
    expect(crash.signal).toBe('SIGKILL');
    expect(crash.stdout).toBe('');

    const after = await openSqliteStore({ dataDir });
    try {
      expect((await after.listReferences('screw')).map((r) => r.id)).toEqual([kept!.id]);
      expect(await after.loadFeatures('screw', 'ckpt-a')).toHaveLength(1);
      expect((await after.getCategory('screw'))?.referenceCount).toBe(1);
      // And the store takes writes again: the dead process's lock went with it.
      await after.addReferences('screw', [reference('next')], { limit: 100 });
    } finally {
      await after.close();
    }
  });

  it('is what openStore picks without a URL, and an unknown URL scheme is refused', async () => {
    const dataDir = join(root, 'picked');
    const store = await openStore({ dataDir });
    expect(store.backend).toBe('sqlite');
    await store.close();
    expect((await openStore({ dataDir, url: '' }).then((s) => s.close().then(() => 'opened')))).toBe('opened');
    await expect(openStore({ dataDir, url: 'mysql://user:secret@db/x' })).rejects.toThrow(/not postgres:\/\/.*unset for SQLite/);
    await expect(openStore({ dataDir, url: 'mysql://user:secret@db/x' })).rejects.not.toThrow(/secret/);
  });
});
