// HTTP to the Hugging Face Hub: the bearer token (sent only to the Hub's own origin, never to
// the CDN it redirects to), redirects followed by hand so the Hub's x-linked-* headers on the
// CDN redirect stay visible, and bounded retries with backoff on network errors and 5xx
// (util/retry.ts).
import { retry } from '../../util/retry.ts';

export interface HubHttp {
  fetch: typeof fetch;
  token?: string;
  /** Attempts per request, the first included. */
  tries: number;
  /** Wait before the first retry; doubles on each further retry. */
  retryDelayMs: number;
  log: (msg: string) => void;
}

export interface HubResponse {
  response: Response;
  /** Headers of every response along the redirect chain; the first is the Hub's own. */
  chain: Headers[];
  url: string;
}

/** The Hub answered, but not with what was asked for (4xx, or 5xx after all retries). */
export class HubHttpError extends Error {
  override readonly name = 'HubHttpError';
  constructor(
    readonly status: number,
    readonly url: string,
    /** The Hub's `x-error-code`: RepoNotFound, RevisionNotFound, EntryNotFound, GatedRepo... */
    readonly errorCode?: string,
  ) {
    super(`HTTP ${status}${errorCode ? ` (${errorCode})` : ''} from ${url}`);
  }
}

/** The Hub could not be reached at all (connection refused, DNS, reset...) after all retries. */
export class HubNetworkError extends Error {
  override readonly name = 'HubNetworkError';
  constructor(
    readonly code: string,
    readonly url: string,
    options?: { cause?: unknown },
  ) {
    super(`${code} from ${url}`, options);
  }
}

const MAX_REDIRECTS = 10;
const USER_AGENT = 'clip-anomaly-service';

export function isRetryableStatus(status: number): boolean {
  return status >= 500 || status === 429 || status === 408;
}

/**
 * The most telling code in a fetch failure: undici wraps the socket error (ECONNREFUSED,
 * ENOTFOUND, ECONNRESET, UND_ERR_SOCKET...) in `cause`, sometimes in an AggregateError.
 */
export function networkErrorCode(err: unknown): string {
  const queue: unknown[] = [err];
  const seen = new Set<unknown>();
  while (queue.length > 0) {
    const e = queue.shift();
    if (!e || typeof e !== 'object' || seen.has(e)) continue;
    seen.add(e);
    const { code, cause } = e as { code?: unknown; cause?: unknown };
    if (typeof code === 'string' && code !== '') return code;
    queue.push(cause);
    if (e instanceof AggregateError) queue.push(...e.errors);
  }
  if (err instanceof Error) return err.message;
  return String(err);
}

/**
 * One request with retries. Returns whatever status the Hub ends with (callers decide what a
 * 404 means); throws HubNetworkError when no answer came after all tries.
 */
export async function hubRequest(
  http: HubHttp,
  url: string,
  init: {
    method: 'GET' | 'HEAD';
    headers?: Record<string, string>;
    /** Stop following redirects at a response for which this is true. */
    stopAt?: (response: Response) => boolean;
  },
): Promise<HubResponse> {
  try {
    return await retry(
      async (attempt) => {
        const result = await followRedirects(http, url, init);
        const { status } = result.response;
        // The last try's answer is returned whatever it is; earlier 5xx/429/408 are retried.
        if (isRetryableStatus(status) && attempt < http.tries) {
          await result.response.body?.cancel();
          throw new RetryableStatus(status);
        }
        return result;
      },
      {
        attempts: http.tries,
        baseDelayMs: http.retryDelayMs,
        onRetry: ({ error }) =>
          http.log(
            error instanceof RetryableStatus
              ? `${init.method} ${url} answered HTTP ${error.status}, retrying`
              : `${init.method} ${url} failed (${networkErrorCode(error)}), retrying`,
          ),
      },
    );
  } catch (err) {
    // Only network failures get here: a retryable status is never thrown on the last try.
    throw new HubNetworkError(networkErrorCode(err), url, { cause: err });
  }
}

/** A 5xx/429/408 answer before the last try: dropped and asked again. */
class RetryableStatus extends Error {
  constructor(readonly status: number) {
    super(`HTTP ${status}`);
  }
}

async function followRedirects(
  http: HubHttp,
  url: string,
  init: { method: 'GET' | 'HEAD'; headers?: Record<string, string>; stopAt?: (response: Response) => boolean },
): Promise<HubResponse> {
  const hubOrigin = new URL(url).origin;
  const chain: Headers[] = [];
  let current = url;
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const headers: Record<string, string> = {
      'user-agent': USER_AGENT,
      // Sizes and hashes are of the raw bytes: a compressed answer would break both checks.
      'accept-encoding': 'identity',
      ...init.headers,
    };
    if (http.token && new URL(current).origin === hubOrigin) headers.authorization = `Bearer ${http.token}`;

    const response = await http.fetch(current, { method: init.method, headers, redirect: 'manual' });
    chain.push(response.headers);
    const location = response.headers.get('location');
    const isRedirect = response.status >= 300 && response.status < 400 && location !== null;
    if (!isRedirect || init.stopAt?.(response)) return { response, chain, url: current };
    await response.body?.cancel();
    current = new URL(location, current).toString();
  }
  throw new Error(`more than ${MAX_REDIRECTS} redirects from ${url}`);
}
