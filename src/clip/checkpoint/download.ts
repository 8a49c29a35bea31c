// Downloads one file: streamed to `{dest}.part`, resumed with a Range request when a `.part`
// is left from an interrupted try or start, checked for size and sha256, then renamed into
// place, so `dest` only ever exists complete and verified. (Not util/atomic-write: the `.part`
// must outlive a failed try, since the next one resumes from it.)
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { retry } from '../../util/retry.ts';
import { writeFailureMessage } from '../../util/atomic-write.ts';
import { HubNetworkError, hubRequest, isRetryableStatus, networkErrorCode, type HubHttp } from './hub-http.ts';

export interface DownloadRequest {
  url: string;
  dest: string;
  expectedSize?: number;
  /** Lower-case hex; the download is refused when the bytes hash to anything else. */
  expectedSha256?: string;
  http: HubHttp;
  /** Called on every chunk; `received` counts the resumed-from bytes too. */
  onBytes?: (received: number, total: number | undefined) => void;
  /** Called once per try, before the first byte: where it starts and what it expects. */
  onStart?: (resumedFrom: number, total: number | undefined) => void;
}

export interface DownloadedFile {
  size: number;
  sha256: string;
}

export type DownloadErrorKind = 'network' | 'http' | 'size' | 'integrity' | 'filesystem';

export class DownloadError extends Error {
  override readonly name = 'DownloadError';
  constructor(
    readonly kind: DownloadErrorKind,
    message: string,
    readonly details: { status?: number; errorCode?: string; code?: string; path?: string; retryable?: boolean; tries?: number } = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

// Errors from our own disk, which no retry fixes.
const FILESYSTEM_CODES = new Set(['ENOSPC', 'EACCES', 'EPERM', 'EROFS', 'EISDIR', 'ENOTDIR', 'EMFILE', 'EDQUOT']);

export async function downloadFile(request: DownloadRequest): Promise<DownloadedFile> {
  const { dest, http } = request;
  const part = `${dest}.part`;
  await mkdir(path.dirname(dest), { recursive: true });

  try {
    await retry(
      async () => {
        try {
          await fetchIntoPart(request, part);
        } catch (err) {
          const error = asDownloadError(err, request.url, part);
          // A disk that is full (or read-only) will not take the rest: what arrived goes too.
          if (error.kind === 'filesystem') await unlink(part).catch(() => {});
          throw error;
        }
      },
      {
        attempts: http.tries,
        baseDelayMs: http.retryDelayMs,
        retryable: (err) => (err as DownloadError).details.retryable === true,
        onRetry: ({ error }) => http.log(`Download of ${path.basename(dest)} interrupted (${(error as DownloadError).message}), retrying`),
      },
    );
  } catch (err) {
    const error = err as DownloadError;
    if (!error.details.retryable) throw error;
    throw new DownloadError('network', error.message, { ...error.details, tries: http.tries }, { cause: error });
  }

  const size = (await stat(part)).size;
  if (request.expectedSize !== undefined && size !== request.expectedSize) {
    await unlink(part).catch(() => {});
    throw new DownloadError('size', `expected ${request.expectedSize} bytes, got ${size}`);
  }
  const sha256 = await sha256OfFile(part);
  if (request.expectedSha256 !== undefined && sha256 !== request.expectedSha256) {
    await unlink(part).catch(() => {});
    throw new DownloadError('integrity', `expected sha256 ${request.expectedSha256}, got ${sha256}`);
  }
  await rename(part, dest);
  return { size, sha256 };
}

export async function sha256OfFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** One try: appends to `.part` from where it ends, or rewrites it when the server ignores Range. */
async function fetchIntoPart(request: DownloadRequest, part: string): Promise<void> {
  const { expectedSize } = request;
  let offset = await sizeOf(part);
  if (expectedSize !== undefined && offset > expectedSize) {
    await unlink(part);
    offset = 0;
  }
  if (expectedSize !== undefined && offset === expectedSize) {
    // Complete already (stopped between the last byte and the rename): just verify it.
    request.onStart?.(offset, expectedSize);
    return;
  }

  const headers: Record<string, string> = offset > 0 ? { range: `bytes=${offset}-` } : {};
  const { response } = await hubRequest({ ...request.http, tries: 1 }, request.url, { method: 'GET', headers });
  const { status } = response;

  let start: number;
  let total: number | undefined;
  if (status === 206 && offset > 0) {
    const range = parseContentRange(response.headers.get('content-range'));
    if (range?.start !== offset) {
      await response.body?.cancel();
      await unlink(part).catch(() => {});
      throw retryable(`server resumed at an unexpected offset (${response.headers.get('content-range')})`);
    }
    start = offset;
    total = range.total ?? expectedSize;
  } else if (status === 200) {
    // A 200 to a Range request means the server ignored it: start the file over.
    start = 0;
    total = contentLength(response) ?? expectedSize;
  } else if (status === 416) {
    await response.body?.cancel();
    await unlink(part).catch(() => {});
    throw retryable('server refused to resume (HTTP 416), starting over');
  } else {
    await response.body?.cancel();
    const errorCode = response.headers.get('x-error-code') ?? undefined;
    throw new DownloadError('http', `HTTP ${status}${errorCode ? ` (${errorCode})` : ''} from ${request.url}`, {
      status,
      errorCode,
      retryable: isRetryableStatus(status),
    });
  }
  if (!response.body) throw retryable('empty response body');

  request.onStart?.(start, total);
  let received = start;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      received += chunk.length;
      request.onBytes?.(received, total);
      callback(null, chunk);
    },
  });
  await pipeline(
    Readable.fromWeb(response.body as unknown as WebReadableStream<Uint8Array>),
    counter,
    createWriteStream(part, { flags: start > 0 ? 'a' : 'w' }),
  );

  const written = await sizeOf(part);
  if (total !== undefined && written < total) throw retryable(`connection ended after ${written} of ${total} bytes`);
}

function retryable(message: string): DownloadError {
  return new DownloadError('network', message, { retryable: true });
}

function asDownloadError(err: unknown, url: string, part: string): DownloadError {
  if (err instanceof DownloadError) return err;
  const code = err instanceof HubNetworkError ? err.code : networkErrorCode(err);
  if (FILESYSTEM_CODES.has(code)) {
    return new DownloadError('filesystem', writeFailureMessage(part, err), { code, path: part }, { cause: err });
  }
  return new DownloadError('network', `${code} from ${url}`, { code, retryable: true }, { cause: err });
}

function parseContentRange(header: string | null): { start: number; total?: number } | undefined {
  const match = header ? /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(header.trim()) : null;
  if (!match) return undefined;
  return { start: Number(match[1]), total: match[2] === '*' ? undefined : Number(match[2]) };
}

function contentLength(response: Response): number | undefined {
  const text = response.headers.get('content-length');
  // A compressed body's length is not the file's.
  if (text === null || response.headers.get('content-encoding')) return undefined;
  return /^\d+$/.test(text) ? Number(text) : undefined;
}

async function sizeOf(file: string): Promise<number> {
  try {
    return (await stat(file)).size;
  } catch {
    return 0;
  }
}
