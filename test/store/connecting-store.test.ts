// The store that opens in the background (no database needed: the opener is the test's):
// retries only "cannot reach", one log line per attempt, 503 store_unavailable until open,
// forwarding and the reachability state afterwards, a fatal failure ends the attempts; and the
// replica settings (WEBHOOK_LEASE_MS longer than an attempt, the STORE_* values).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadSettings } from '../../src/settings.ts';
import { ConnectingStore, type StoreLog } from '../../src/store/connecting-store.ts';
import { StoreSchemaError, StoreUnavailableError } from '../../src/store/errors.ts';
import { openSqliteStore } from '../../src/store/sqlite-store.ts';
import type { Store } from '../../src/store/store.ts';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function recordingLog() {
  const lines: Array<{ level: string; obj: Record<string, unknown>; msg: string }> = [];
  const log: StoreLog = {
    info: (obj, msg) => lines.push({ level: 'info', obj: obj as Record<string, unknown>, msg }),
    warn: (obj, msg) => lines.push({ level: 'warn', obj: obj as Record<string, unknown>, msg }),
    error: (obj, msg) => lines.push({ level: 'error', obj: obj as Record<string, unknown>, msg }),
  };
  return { lines, log };
}

async function sqlite(): Promise<Store> {
  const dir = mkdtempSync(join(tmpdir(), 'connecting-'));
  dirs.push(dir);
  return openSqliteStore({ dataDir: dir });
}

describe('ConnectingStore', () => {
  it('retries while the store cannot be reached, one warn line per attempt; 503 until open, then forwards', async () => {
    let failures = 3;
    const real = await sqlite();
    const store = new ConnectingStore('postgres', async () => {
      if (failures-- > 0) throw new StoreUnavailableError('the PostgreSQL store cannot be reached: connect ECONNREFUSED');
      return real;
    });
    const { lines, log } = recordingLog();
    expect(store.status()).toEqual({ state: 'connecting', attempts: 0 });
    await expect(store.listCategories()).rejects.toMatchObject({ statusCode: 503, code: 'store_unavailable', headers: { 'retry-after': '5' } });
    const opened = store.connect(log, { baseDelayMs: 5, maxDelayMs: 20 });
    expect(store.connect(log)).toBe(opened); // once
    await opened;
    expect(store.opened).toBe(true);
    expect(store.status()).toEqual({ state: 'connected', attempts: 4 });
    const retries = lines.filter((l) => l.msg === 'the store is unreachable; retrying');
    expect(retries.map((l) => l.obj.attempt)).toEqual([1, 2, 3]);
    expect(retries.every((l) => l.level === 'warn' && typeof l.obj.retryInMs === 'number' && /ECONNREFUSED/.test(String(l.obj.reason)))).toBe(true);
    expect(lines.at(-1)).toMatchObject({ level: 'info', msg: 'store connected', obj: { attempts: 4 } });

    await store.putCategory({ id: 'bolt', name: 'bolt', defaultMethod: 'dense-frequency', targetFalseAlarmRate: 0.1, notes: '' });
    expect((await store.listCategories()).map((c) => c.id)).toEqual(['bolt']);
    await store.close();
  });

  it('remembers whether the last call reached the database', async () => {
    const real = await sqlite();
    let down = false;
    const flaky = new Proxy(real, {
      get(target, name, receiver) {
        const value = Reflect.get(target, name, receiver);
        if (name !== 'getCategory' || typeof value !== 'function') return value;
        return (...args: unknown[]) => (down ? Promise.reject(new StoreUnavailableError('connection terminated')) : value.apply(target, args));
      },
    });
    const store = new ConnectingStore('postgres', async () => flaky);
    await store.connect(recordingLog().log);
    down = true;
    await expect(store.getCategory('x')).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(store.status()).toMatchObject({ state: 'unavailable', error: 'connection terminated' });
    down = false;
    expect(await store.getCategory('x')).toBeNull();
    expect(store.status().state).toBe('connected');
    await store.close();
  });

  it('a failure waiting cannot fix ends the attempts: state failed, logged at error', async () => {
    let attempts = 0;
    const store = new ConnectingStore('postgres', async () => {
      attempts++;
      throw new StoreSchemaError(9, 2);
    });
    const { lines, log } = recordingLog();
    await expect(store.connect(log, { baseDelayMs: 5 })).rejects.toBeInstanceOf(StoreSchemaError);
    expect(attempts).toBe(1);
    expect(store.status()).toMatchObject({ state: 'failed', attempts: 1, error: expect.stringMatching(/schema version 9/) });
    expect(lines).toEqual([expect.objectContaining({ level: 'error', msg: 'the store cannot be opened' })]);
    await expect(store.ping()).rejects.toThrow(/could not be opened/);
  });

  it('close() while connecting stops the attempts', async () => {
    let attempts = 0;
    const store = new ConnectingStore('postgres', async () => {
      attempts++;
      throw new StoreUnavailableError('down');
    });
    const opening = store.connect(recordingLog().log, { baseDelayMs: 50 });
    await new Promise((r) => setTimeout(r, 20));
    await store.close();
    await expect(opening).rejects.toBeInstanceOf(StoreUnavailableError);
    const after = attempts;
    await new Promise((r) => setTimeout(r, 150));
    expect(attempts).toBe(after);
  });
});

describe('replica settings', () => {
  it('reads the store settings and refuses a webhook lease no longer than an attempt', () => {
    const s = loadSettings({ STORE_URL: 'postgres://db/x', STORE_SCHEMA: 'line_3', STORE_POOL_SIZE: '4', STORE_STATEMENT_TIMEOUT_MS: '0', STORE_SSL: 'require', WEBHOOK_LEASE_MS: '20000' });
    expect([s.storeSchema, s.storePoolSize, s.storeStatementTimeoutMs, s.storeSsl, s.storeConnectTimeoutMs, s.storeRetryMaxMs, s.webhookLeaseMs]).toEqual(['line_3', 4, 0, 'require', 10_000, 30_000, 20_000]);
    expect(() => loadSettings({ WEBHOOK_LEASE_MS: '5000', WEBHOOK_TIMEOUT_MS: '5000' })).toThrow(/WEBHOOK_LEASE_MS=5000: must be longer than WEBHOOK_TIMEOUT_MS \(5000\)/);
    expect(() => loadSettings({ STORE_SCHEMA: 'drop table;' })).toThrow(/STORE_SCHEMA=/);
    expect(() => loadSettings({ STORE_SSL: 'maybe' })).toThrow(/STORE_SSL="maybe": allowed values are on, off, require/);
  });
});
