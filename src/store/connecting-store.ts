// A store whose database may not be there yet. The server starts, and answers zero-shot
// detections, while this opens the backend in the background, retrying with backoff and one log
// line per attempt; until it is open every call throws StoreUnavailableError (503
// store_unavailable). Afterwards it only forwards, and remembers whether the last call found
// the database reachable, for /readyz and the metrics. Only "cannot reach" is retried: a schema
// newer than this build, refused credentials or a missing database are configuration to fix,
// and end the attempts (the server exits on them).
import { retry } from '../util/retry.ts';
import { StoreUnavailableError } from './errors.ts';
import type { Store } from './store.ts';

export interface StoreLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface ConnectOptions {
  /** First wait between attempts; doubled each time up to maxDelayMs, with jitter. */
  baseDelayMs?: number;
  maxDelayMs?: number;
}

/**
 * 'connecting': never opened yet; 'connected': the last call reached the database;
 * 'unavailable': opened once, but the last call could not reach it; 'failed': will not open.
 */
export type StoreState = 'connecting' | 'connected' | 'unavailable' | 'failed';

export interface StoreStatus {
  state: StoreState;
  /** Open attempts made so far. */
  attempts: number;
  /** Why the last attempt or call failed, when it did. */
  error?: string;
}

type Forwarded = Exclude<keyof Store, 'backend'>;

export class ConnectingStore implements Store {
  private store?: Store;
  private state: StoreState = 'connecting';
  private attempts = 0;
  private lastError?: string;
  private readonly stop = new AbortController();
  private opening?: Promise<Store>;
  /** connect()'s log: the transitions of a store opened once (gone, back) are said there, once each. */
  private log?: StoreLog;

  private markOpen!: () => void;
  /** Resolves once the store is open (never, when it will not open). */
  readonly whenOpen = new Promise<void>((resolve) => (this.markOpen = resolve));

  constructor(
    readonly backend: 'sqlite' | 'postgres',
    private readonly open: () => Promise<Store>,
  ) {}

  status(): StoreStatus {
    return { state: this.state, attempts: this.attempts, ...(this.lastError ? { error: this.lastError } : {}) };
  }

  /** Opened at least once (its schema is migrated): what /readyz waits for. */
  get opened(): boolean {
    return this.store !== undefined;
  }

  /** Starts opening (once); resolves when open, rejects on a failure that retrying cannot fix. */
  connect(log: StoreLog, options: ConnectOptions = {}): Promise<Store> {
    this.log = log;
    this.opening ??= retry(
      async () => {
        this.attempts += 1;
        return this.open();
      },
      {
        attempts: Number.MAX_SAFE_INTEGER,
        baseDelayMs: options.baseDelayMs ?? 500,
        maxDelayMs: options.maxDelayMs ?? 30_000,
        jitter: 'equal',
        signal: this.stop.signal,
        retryable: (err) => err instanceof StoreUnavailableError,
        onRetry: ({ attempt, error, delayMs }) => {
          this.lastError = (error as Error).message;
          log.warn({ component: 'store', backend: this.backend, attempt, retryInMs: Math.round(delayMs), reason: this.lastError }, 'the store is unreachable; retrying');
        },
      },
    ).then(
      (store) => {
        if (this.stop.signal.aborted) {
          void store.close();
          throw new StoreUnavailableError('the store was closed while connecting');
        }
        this.store = store;
        this.state = 'connected';
        this.lastError = undefined;
        this.markOpen();
        log.info({ component: 'store', backend: this.backend, attempts: this.attempts }, 'store connected');
        return store;
      },
      (err: unknown) => {
        this.state = 'failed';
        this.lastError = (err as Error).message;
        if (!this.stop.signal.aborted) log.error({ component: 'store', backend: this.backend, attempts: this.attempts, reason: this.lastError }, 'the store cannot be opened');
        throw err;
      },
    );
    return this.opening;
  }

  private async use<T>(fn: (store: Store) => Promise<T>): Promise<T> {
    const store = this.store;
    if (!store) {
      const why = this.state === 'failed' ? 'the store could not be opened' : `the store is unreachable${this.lastError ? `: ${this.lastError}` : ''}; retrying`;
      throw new StoreUnavailableError(why);
    }
    try {
      const value = await fn(store);
      if (this.state === 'unavailable') this.log?.info({ component: 'store', backend: this.backend }, 'the store is reachable again');
      this.state = 'connected';
      this.lastError = undefined;
      return value;
    } catch (err) {
      if (err instanceof StoreUnavailableError) {
        if (this.state !== 'unavailable') this.log?.warn({ component: 'store', backend: this.backend, reason: err.message }, 'the store became unreachable: requests that need it get 503 store_unavailable until it is back');
        this.state = 'unavailable';
        this.lastError = err.message;
      }
      throw err;
    }
  }

  async close(): Promise<void> {
    this.stop.abort();
    await this.store?.close();
  }

  ping = this.forward('ping');
  schemaVersion = this.forward('schemaVersion');
  stats = this.forward('stats');
  putCategory = this.forward('putCategory');
  getCategory = this.forward('getCategory');
  listCategories = this.forward('listCategories');
  setCalibration = this.forward('setCalibration');
  deleteCategory = this.forward('deleteCategory');
  addReferences = this.forward('addReferences');
  listReferences = this.forward('listReferences');
  getReferenceImage = this.forward('getReferenceImage');
  deleteReference = this.forward('deleteReference');
  loadFeatures = this.forward('loadFeatures');
  categoriesNeedingFeatures = this.forward('categoriesNeedingFeatures');
  replaceFeatures = this.forward('replaceFeatures');
  recordDetection = this.forward('recordDetection');
  getDetection = this.forward('getDetection');
  listDetections = this.forward('listDetections');
  getDetectionImage = this.forward('getDetectionImage');
  setFeedback = this.forward('setFeedback');
  pruneDetections = this.forward('pruneDetections');
  getBlob = this.forward('getBlob');
  enqueueEvent = this.forward('enqueueEvent');
  claimEvents = this.forward('claimEvents');
  markDelivered = this.forward('markDelivered');
  markFailed = this.forward('markFailed');
  giveUp = this.forward('giveUp');
  outboxStats = this.forward('outboxStats');
  getTextEmbedding = this.forward('getTextEmbedding');
  putTextEmbedding = this.forward('putTextEmbedding');

  private forward<K extends Exclude<Forwarded, 'close'>>(name: K): Store[K] {
    return ((...args: unknown[]) => this.use((s) => (s[name] as (...a: unknown[]) => Promise<unknown>)(...args))) as Store[K];
  }
}
