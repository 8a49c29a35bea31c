// The download cache: `{cacheDir}/{owner}--{name}/{revision}/{file}`, plus a `.complete.json`
// manifest written last. A folder whose manifest lists files that are all there with their
// recorded sizes is complete, and is used without any network request.
import { mkdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../../util/atomic-write.ts';
import { DEFAULT_CACHE_DIR } from '../../defaults.ts';

export const MANIFEST_FILE = '.complete.json';
const MANIFEST_VERSION = 1;

export interface CachedFile {
  size: number;
  sha256: string;
  /** The Hub's ETag when the file was fetched (sha256 for LFS files, git blob hash otherwise). */
  etag?: string;
}

export interface CacheManifest {
  version: number;
  repo: string;
  revision: string;
  /** The commit the revision pointed at when downloaded, when the Hub said. */
  commit?: string;
  endpoint: string;
  downloadedAt: string;
  config: string;
  /** The safetensors files holding the tensors: one file, or the shards of an index. */
  weights: string[];
  /** Optional files (tokenizer, preprocessor) the repo does not have. */
  missing: string[];
  files: Record<string, CachedFile>;
}

export type ManifestCheck = { complete: true; manifest: CacheManifest } | { complete: false; reason: string };

/** The MODEL_CACHE_DIR default, `~/.cache/clip-anomaly` (src/defaults.ts; XDG_CACHE_HOME is not consulted). */
export function defaultCacheDir(): string {
  return DEFAULT_CACHE_DIR;
}

export function cacheFolder(cacheDir: string, owner: string, name: string, revision: string): string {
  // Revisions like `refs/pr/1` would otherwise become nested folders.
  return path.join(path.resolve(cacheDir), `${owner}--${name}`, revision.replaceAll('/', '--'));
}

/** Checks the manifest against the files on disk by size only: hashing a 600 MB file each start is too slow. */
export async function readCompleteManifest(folder: string, repo: string, revision: string): Promise<ManifestCheck> {
  let manifest: CacheManifest;
  try {
    manifest = JSON.parse(await readFile(path.join(folder, MANIFEST_FILE), 'utf8')) as CacheManifest;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { complete: false, reason: code === 'ENOENT' ? `no ${MANIFEST_FILE}` : `unreadable ${MANIFEST_FILE}` };
  }
  if (manifest.version !== MANIFEST_VERSION || manifest.repo !== repo || manifest.revision !== revision) {
    return { complete: false, reason: `${MANIFEST_FILE} is for another repo, revision or format` };
  }
  if (!manifest.files || typeof manifest.files !== 'object' || !manifest.files[manifest.config]) {
    return { complete: false, reason: `${MANIFEST_FILE} lists no config` };
  }
  for (const [file, expected] of Object.entries(manifest.files)) {
    const size = await sizeOf(path.join(folder, file));
    if (size === undefined) return { complete: false, reason: `${file} is missing` };
    if (size !== expected.size) return { complete: false, reason: `${file} has ${size} bytes, expected ${expected.size}` };
  }
  return { complete: true, manifest };
}

/** Written to a temporary name and renamed, so a manifest on disk is always whole. */
export async function writeManifest(folder: string, manifest: Omit<CacheManifest, 'version'>): Promise<void> {
  await mkdir(folder, { recursive: true });
  const target = path.join(folder, MANIFEST_FILE);
  await writeFileAtomic(target, `${JSON.stringify({ version: MANIFEST_VERSION, ...manifest }, null, 2)}\n`);
}

async function sizeOf(file: string): Promise<number | undefined> {
  try {
    const st = await stat(file);
    return st.isFile() ? st.size : undefined;
  } catch {
    return undefined;
  }
}
