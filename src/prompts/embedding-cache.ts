// Bounded LRU cache of class text embeddings. Encoding 140 + 80 prompts with the text tower
// costs far more than scoring an image, and requests repeat the same category, so the pair of
// class embeddings is kept per prompt configuration. Concurrent requests for the same key
// share one computation.
import { DEFAULT_PROMPT_CACHE_SIZE } from '../defaults.ts';

export interface ClassEmbeddings {
  normal: Float32Array;
  abnormal: Float32Array;
}

export interface EmbeddingCacheSettings {
  /** Entries kept before the least recently used is evicted. Default PROMPT_CACHE_SIZE's, 256 (a few MB at D=768). */
  capacity: number;
}

export const defaultEmbeddingCacheSettings: EmbeddingCacheSettings = { capacity: DEFAULT_PROMPT_CACHE_SIZE };

export interface EmbeddingCacheStats {
  hits: number;
  misses: number;
  /** Requests that joined a computation already in flight (counted apart from hits). */
  joined: number;
  evictions: number;
  size: number;
  capacity: number;
  inFlight: number;
}

/** What identifies one set of class embeddings. */
export interface PromptCacheKeyParts {
  model?: string;
  category?: string;
  mode: string;
  normal?: readonly string[];
  abnormal?: readonly string[];
}

/** A stable string key: fixed field order, so equal parts give equal keys. */
export function promptCacheKey(parts: PromptCacheKeyParts): string {
  return JSON.stringify([
    parts.model ?? null,
    parts.category ?? null,
    parts.mode,
    parts.normal ?? null,
    parts.abnormal ?? null,
  ]);
}

/**
 * Map-based LRU: a Map iterates in insertion order, so re-inserting on access keeps the least
 * recently used entry first. Stored arrays are shared with callers and must not be mutated.
 */
export class EmbeddingCache {
  readonly capacity: number;
  private readonly entries = new Map<string, ClassEmbeddings>();
  private readonly pending = new Map<string, Promise<ClassEmbeddings>>();
  private hits = 0;
  private misses = 0;
  private joined = 0;
  private evictions = 0;

  constructor(settings: Partial<EmbeddingCacheSettings> = {}) {
    const capacity = settings.capacity ?? defaultEmbeddingCacheSettings.capacity;
    // 0 is allowed: nothing is kept, but in-flight deduplication still works.
    if (!Number.isInteger(capacity) || capacity < 0) {
      throw new RangeError(`EmbeddingCache: capacity must be a non-negative integer, got ${capacity}`);
    }
    this.capacity = capacity;
  }

  get size(): number {
    return this.entries.size;
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  /** Looks up without computing; a hit becomes the most recently used entry. */
  get(key: string): ClassEmbeddings | undefined {
    const value = this.entries.get(key);
    if (value === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    this.entries.delete(key);
    this.entries.set(key, value);
    return value;
  }

  set(key: string, value: ClassEmbeddings): void {
    if (this.capacity === 0) return;
    this.entries.delete(key);
    this.entries.set(key, value);
    while (this.entries.size > this.capacity) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
      this.evictions++;
    }
  }

  delete(key: string): boolean {
    return this.entries.delete(key);
  }

  /** Drops the entries (not the in-flight computations) and keeps the counters. */
  clear(): void {
    this.entries.clear();
  }

  /** Keys from least to most recently used. */
  keys(): string[] {
    return [...this.entries.keys()];
  }

  /**
   * The cached value, or the result of `compute`. Callers asking for a key whose computation
   * is still running get the same promise; a rejected computation is not cached, so the next
   * call retries.
   */
  getOrCompute(key: string, compute: () => Promise<ClassEmbeddings>): Promise<ClassEmbeddings> {
    const cached = this.get(key);
    if (cached !== undefined) return Promise.resolve(cached);
    const running = this.pending.get(key);
    if (running !== undefined) {
      // get() counted a miss; this request did not start a computation, so re-book it.
      this.misses--;
      this.joined++;
      return running;
    }
    let promise: Promise<ClassEmbeddings>;
    try {
      promise = compute();
    } catch (err) {
      // A synchronous throw behaves like a rejection.
      promise = Promise.reject(err);
    }
    const tracked = promise.then(
      (value) => {
        this.pending.delete(key);
        this.set(key, value);
        return value;
      },
      (err: unknown) => {
        this.pending.delete(key);
        throw err;
      },
    );
    this.pending.set(key, tracked);
    return tracked;
  }

  stats(): EmbeddingCacheStats {
    return {
      hits: this.hits,
      misses: this.misses,
      joined: this.joined,
      evictions: this.evictions,
      size: this.entries.size,
      capacity: this.capacity,
      inFlight: this.pending.size,
    };
  }
}
