// Class text embeddings as every method gets them: the in-memory LRU (embedding-cache.ts), under
// it the on-disk store (embedding-store.ts) so restarts do not recompute, and under that the
// method's own computation. Concurrent callers of one key share one computation, which runs
// without any caller's abort signal: a client that hangs up stops only its own wait, never the
// computation another request is waiting for.
//
// Under the disk, with several replicas, the service's store (its text_embeddings table):
// a category's embeddings are computed by the first replica that needs them and read by the
// others. A table in the store rather than Redis: the replicas already share that database
// (no second service to run, secure and back up), an entry is a few KB read once per
// process per key (the LRU serves the rest), so a cache server's speed buys nothing here.
// The store is an optimisation on this path: a read slower than SHARED_READ_MS, or failing
// (the database went away), is computed locally; a failed write is only logged.
import { createHash } from 'node:crypto';
import { EmbeddingCache, type ClassEmbeddings } from './embedding-cache.ts';
import type { EmbeddingStore } from './embedding-store.ts';

/** The store's text embedding table (Store.getTextEmbedding/putTextEmbedding), shared by every replica. */
export interface SharedTextTable {
  getTextEmbedding(key: string): Promise<Float32Array | null>;
  putTextEmbedding(key: string, vector: Float32Array): Promise<void>;
}

export interface SharedText {
  table: SharedTextTable;
  /**
   * What makes embeddings equal on every machine: the weights' content and the graph format
   * (not the local graph cache key, which names folders and modification times).
   */
  checkpoint: string;
  /** The machine-local model part of the keys given to get(), replaced by `checkpoint` in the table's key. */
  localModel: string;
  log?: (msg: string) => void;
}

/** A shared read slower than this is not waited for: computing locally is then the faster way. */
export const SHARED_READ_MS = 2000;

export class TextEmbeddings {
  /** Text embeddings computed here with the text tower (the shared-cache test counts them). */
  computed = 0;
  /** Embeddings read from the shared table instead. */
  sharedHits = 0;

  constructor(
    readonly cache: EmbeddingCache,
    private readonly dim: number,
    /** Class embeddings on disk, under the LRU: they survive restarts. */
    private readonly store?: EmbeddingStore,
    /** Class embeddings in the service's store, shared by the replicas. */
    private readonly shared?: SharedText,
  ) {}

  /** The embeddings under `key`: from memory, disk or the shared store, or `compute()`d once and kept in all. */
  get(key: string, compute: () => Promise<ClassEmbeddings>, signal?: AbortSignal): Promise<ClassEmbeddings> {
    const shared = this.cache.getOrCompute(key, async () => {
      const stored = await this.store?.read(key, this.dim);
      if (stored) return stored;
      const fromShared = await this.readShared(key);
      if (fromShared) {
        this.sharedHits += 1;
        await this.store?.write(key, fromShared);
        return fromShared;
      }
      const value = await compute();
      this.computed += 1;
      await this.store?.write(key, value);
      void this.writeShared(key, value);
      return value;
    });
    return signal ? untilAborted(shared, signal) : shared;
  }

  /** The shared table's key: the checkpoint identity and a hash of the prompts. */
  sharedKey(key: string): string | undefined {
    const s = this.shared;
    if (!s) return undefined;
    const prompts = createHash('sha256').update(key.split(s.localModel).join('')).digest('hex');
    return `text/1:${s.checkpoint}:${prompts}`;
  }

  private async readShared(key: string): Promise<ClassEmbeddings | undefined> {
    const sharedKey = this.sharedKey(key);
    if (!sharedKey) return undefined;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), SHARED_READ_MS)));
    try {
      const vector = await Promise.race([this.shared!.table.getTextEmbedding(sharedKey), late]);
      if (!vector || vector.length !== 2 * this.dim || !vector.every(Number.isFinite)) return undefined;
      return { normal: vector.slice(0, this.dim), abnormal: vector.slice(this.dim) };
    } catch {
      return undefined; // the store is unreachable: the text tower it is
    } finally {
      clearTimeout(timer);
    }
  }

  private async writeShared(key: string, value: ClassEmbeddings): Promise<void> {
    const sharedKey = this.sharedKey(key);
    if (!sharedKey) return;
    const vector = new Float32Array(2 * this.dim);
    vector.set(value.normal, 0);
    vector.set(value.abnormal, this.dim);
    try {
      await this.shared!.table.putTextEmbedding(sharedKey, vector);
    } catch (err) {
      this.shared!.log?.(`text embeddings not written to the shared store: ${(err as Error).message}`);
    }
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
