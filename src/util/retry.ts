// Bounded retries with exponential backoff, shared by the Hub requests, the checkpoint
// downloads and the webhook deliveries. The caller says what is worth retrying (a predicate on
// the error), what to log before each retry, and may stop everything with an abort signal:
// a pending backoff wait ends at once and no further attempt starts.

export interface BackoffOptions {
  /** Wait before the first retry; doubled for each further one. */
  baseDelayMs: number;
  /** Upper bound of the doubled delay (before jitter). Default: none. */
  maxDelayMs?: number;
  /**
   * 'none': exactly the doubled delay. 'equal': half of it fixed, half random, so the retries
   * of many clients failing together spread out instead of arriving in waves.
   */
  jitter?: 'none' | 'equal';
  /** Source of the jitter, for tests. Default Math.random. */
  random?: () => number;
}

export interface RetryOptions extends BackoffOptions {
  /** Attempts in all, the first included (>= 1). */
  attempts: number;
  /** Whether this failure may be retried. Default: every failure. */
  retryable?: (error: unknown, attempt: number) => boolean;
  /** Called before each retry's wait. */
  onRetry?: (info: { attempt: number; error: unknown; delayMs: number }) => void;
  /** Once aborted, the current wait ends and the last failure is thrown. */
  signal?: AbortSignal;
}

/** Wait before retry number `retry` (1 = the second attempt). */
export function backoffDelay(retry: number, options: BackoffOptions): number {
  const exp = Math.min(options.maxDelayMs ?? Infinity, options.baseDelayMs * 2 ** (retry - 1));
  if ((options.jitter ?? 'none') === 'none') return exp;
  return exp / 2 + ((options.random ?? Math.random)() * exp) / 2;
}

/** Resolves after `ms`, or at once when `signal` aborts (never rejects). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
  });
}

/**
 * Runs `task` until it resolves, the failure is not retryable, the attempts are used up or
 * `signal` aborts; then throws the last failure as it was thrown.
 */
export async function retry<T>(task: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const { attempts, retryable = () => true, onRetry, signal } = options;
  if (!(Number.isInteger(attempts) && attempts >= 1)) throw new RangeError(`attempts must be a whole number >= 1, got ${attempts}`);
  for (let attempt = 1; ; attempt++) {
    try {
      return await task(attempt);
    } catch (error) {
      if (attempt >= attempts || signal?.aborted || !retryable(error, attempt)) throw error;
      const delayMs = backoffDelay(attempt, options);
      onRetry?.({ attempt, error, delayMs });
      await sleep(delayMs, signal);
      if (signal?.aborted) throw error;
    }
  }
}
