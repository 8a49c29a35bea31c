// Class text embeddings as every method gets them: the in-memory LRU (embedding-cache.ts), under
// it the on-disk store (embedding-store.ts) so restarts do not recompute, and under that the
// method's own computation. Concurrent callers of one key share one computation, which runs
// without any caller's abort signal: a client that hangs up stops only its own wait, never the
// computation another request is waiting for.
import { EmbeddingCache, type ClassEmbeddings } from './embedding-cache.ts';
import type { EmbeddingStore } from './embedding-store.ts';

export class TextEmbeddings {
  constructor(
    readonly cache: EmbeddingCache,
    private readonly dim: number,
    /** Class embeddings on disk, under the LRU: they survive restarts. */
    private readonly store?: EmbeddingStore,
  ) {}

  /** The embeddings under `key`: from memory, from disk, or `compute()`d once and kept in both. */
  get(key: string, compute: () => Promise<ClassEmbeddings>, signal?: AbortSignal): Promise<ClassEmbeddings> {
    const shared = this.cache.getOrCompute(key, async () => {
      const stored = await this.store?.read(key, this.dim);
      if (stored) return stored;
      const value = await compute();
      await this.store?.write(key, value);
      return value;
    });
    return signal ? untilAborted(shared, signal) : shared;
  }
}

/** `promise`, or a rejection as soon as `signal` aborts (the promise itself goes on). */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason ?? new Error('aborted'));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason ?? new Error('aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}
