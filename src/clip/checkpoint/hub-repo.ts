// What a Hub repo holds: its file list (from the Hub API) and one file's size and hash (from a
// HEAD on its resolve URL, the same URL the download uses).
import { HubHttpError, hubRequest, type HubHttp } from './hub-http.ts';

export interface HubRepoRef {
  endpoint: string;
  repo: string;
  revision: string;
}

export interface RepoListing {
  files: Set<string>;
  /** The commit the revision points at, when the API says. */
  commit?: string;
}

export interface RemoteFile {
  size?: number;
  /** The Hub's ETag: the sha256 for LFS files, the git blob hash for the others. */
  etag?: string;
  /** Set when the ETag is a sha256, so the downloaded bytes can be checked against it. */
  sha256?: string;
  commit?: string;
}

const SHA256_HEX = /^[0-9a-f]{64}$/i;

export function fileUrl(ref: HubRepoRef, file: string): string {
  const encodedFile = file.split('/').map(encodeURIComponent).join('/');
  return `${ref.endpoint}/${ref.repo}/resolve/${encodeURIComponent(ref.revision)}/${encodedFile}`;
}

/** The repo's page, for people to download files by hand. */
export function repoPageUrl(ref: HubRepoRef): string {
  const base = `${ref.endpoint}/${ref.repo}`;
  return ref.revision === 'main' ? base : `${base}/tree/${encodeURIComponent(ref.revision)}`;
}

/**
 * The repo's files from `GET /api/models/{repo}/revision/{revision}`. Null when the API gives
 * no usable answer (a mirror without it, a 5xx), so the caller probes files with HEAD instead.
 * Throws HubHttpError on 401/403/404: those come from the Hub and apply to the files too.
 */
export async function listRepoFiles(http: HubHttp, ref: HubRepoRef): Promise<RepoListing | null> {
  const url = `${ref.endpoint}/api/models/${ref.repo}/revision/${encodeURIComponent(ref.revision)}`;
  const { response } = await hubRequest(http, url, { method: 'GET' });
  if (response.ok) {
    try {
      const body = (await response.json()) as { siblings?: unknown; sha?: unknown };
      if (Array.isArray(body.siblings)) {
        const names = body.siblings
          .map((s) => (s as { rfilename?: unknown } | null)?.rfilename)
          .filter((name): name is string => typeof name === 'string');
        return { files: new Set(names), commit: typeof body.sha === 'string' ? body.sha : undefined };
      }
    } catch {
      // Not JSON: fall through to probing.
    }
    http.log(`Hub API ${url} gave no file list; checking files one by one`);
    return null;
  }
  await response.body?.cancel();
  if (response.status === 401 || response.status === 403 || response.status === 404) {
    throw new HubHttpError(response.status, url, response.headers.get('x-error-code') ?? undefined);
  }
  http.log(`Hub API ${url} answered HTTP ${response.status}; checking files one by one`);
  return null;
}

/** Size and hash of one file, or null when the repo does not have it. */
export async function headRepoFile(http: HubHttp, ref: HubRepoRef, file: string): Promise<RemoteFile | null> {
  const url = fileUrl(ref, file);
  // The Hub puts x-linked-etag / x-linked-size (the LFS object's sha256 and size) on its
  // redirect to the CDN; the CDN's own ETag is not a sha256, so stop there.
  const { response, chain } = await hubRequest(http, url, {
    method: 'HEAD',
    stopAt: (r) => r.headers.has('x-linked-etag') || r.headers.has('x-linked-size'),
  });
  await response.body?.cancel();
  const errorCode = response.headers.get('x-error-code') ?? undefined;
  if (response.status === 404 && (errorCode === undefined || errorCode === 'EntryNotFound')) return null;
  if (response.status < 200 || response.status >= 400) throw new HubHttpError(response.status, url, errorCode);

  const fromChain = (name: string): string | undefined => chain.map((h) => h.get(name)).find((v) => v !== null) ?? undefined;
  const etag = normaliseEtag(fromChain('x-linked-etag') ?? chain[0]?.get('etag') ?? response.headers.get('etag'));
  const sizeText = fromChain('x-linked-size') ?? (response.status === 200 ? response.headers.get('content-length') : null);
  const size = sizeText !== null && sizeText !== undefined && /^\d+$/.test(sizeText) ? Number(sizeText) : undefined;
  return {
    size,
    etag,
    sha256: etag !== undefined && SHA256_HEX.test(etag) ? etag.toLowerCase() : undefined,
    commit: fromChain('x-repo-commit'),
  };
}

function normaliseEtag(etag: string | null | undefined): string | undefined {
  if (!etag) return undefined;
  return etag.replace(/^W\//, '').replace(/^"(.*)"$/, '$1') || undefined;
}
