// What the shared store suite needs from a backend, and the records its cases build.
import { createHash } from 'node:crypto';
import type { Row } from '../../src/store/sql.ts';
import type { CategoryInput, CommonStoreOptions, NewDetection, NewReference, Store } from '../../src/store/store.ts';

/** One empty place a store can live in: a data folder, or a PostgreSQL schema. */
export interface StoreLocation {
  open(options?: CommonStoreOptions): Promise<Store>;
  /** Writes the schema up to `version` only, as an older build would have left it. */
  migrateTo(version: number): Promise<void>;
  /** Raw SQL with `?` placeholders, Dates and booleans as parameters, on its own connection. */
  sql(sql: string, params?: unknown[]): Promise<Row[]>;
  indexNames(): Promise<string[]>;
}

export interface StoreHarness {
  backend: 'sqlite' | 'postgres';
  /** A fresh, empty location each call. */
  newLocation(): Promise<StoreLocation>;
  /** Removes every location made (after all tests). */
  cleanup(): Promise<void>;
}

/** A clock the test moves by hand. */
export class TestClock {
  constructor(public ms = Date.parse('2025-03-01T12:00:00Z')) {}
  readonly now = (): Date => new Date(this.ms);
  advance(ms: number): void {
    this.ms += ms;
  }
}

/** Deterministic bytes standing in for an encoded image. */
export function image(tag: string, size = 256): Buffer {
  const out = Buffer.alloc(size);
  let block = createHash('sha256').update(tag).digest();
  for (let i = 0; i < size; i += block.length) {
    block.copy(out, i);
    block = createHash('sha256').update(block).digest();
  }
  return out;
}

export function category(id: string, overrides: Partial<CategoryInput> = {}): CategoryInput {
  return { id, name: id, defaultMethod: 'dense-frequency', targetFalseAlarmRate: 0.01, notes: '', ...overrides };
}

/** fp16-sized feature bytes for a reference under a feature key. */
export function features(tag: string, featureKey: string): Buffer {
  return image(`${tag}|${featureKey}`, 96);
}

export function reference(tag: string, featureKeys: string[] = ['ckpt-a']): NewReference {
  return {
    width: 32,
    height: 24,
    image: image(tag),
    thumbnail: image(`thumb:${tag}`, 40),
    features: featureKeys.map((k) => ({ featureKey: k, shape: { patches: 4, dims: 12, dtype: 'fp16' }, data: features(tag, k) })),
  };
}

export function detection(overrides: Partial<NewDetection> = {}): NewDetection {
  return {
    categoryId: null,
    category: 'screw',
    method: 'dense-frequency',
    score: 0.42,
    isAnomalous: false,
    threshold: 0.5,
    thresholdSource: 'default',
    summary: 'no anomaly found',
    metadata: { line: '3' },
    ...overrides,
  };
}

/** Every store a test opened, closed after it whatever happened. */
export class OpenedStores {
  private stores: Store[] = [];
  track(store: Store): Store {
    this.stores.push(store);
    return store;
  }
  async closeAll(): Promise<void> {
    const stores = this.stores;
    this.stores = [];
    await Promise.all(stores.map((s) => s.close()));
  }
}

/** What each group of cases (cases/*.ts) gets from the suite. */
export interface SuiteContext {
  harness: StoreHarness;
  /** A store on a new empty location. */
  fresh(options?: CommonStoreOptions): Promise<{ store: Store; location: StoreLocation }>;
  /** A store on an existing location (closed after the test like every other). */
  openAt(location: StoreLocation, options?: CommonStoreOptions): Promise<Store>;
}

