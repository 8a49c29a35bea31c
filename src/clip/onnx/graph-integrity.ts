// Content check of a built graph folder: every file's size and sha256 are recorded in its
// complete.json at build time and verified before the sessions are opened, so a graph whose
// weights were overwritten (disk fault, a stray copy, a truncated sync) is never scored with.
// Hashing is streamed in 4 MiB chunks (bounded memory whatever the graph size). Every start
// pays a full hash: measured on 450 MiB (a ViT-B/16 graph set) 2.8–3.7 s on a 2-core machine
// at load average 14 (shared), so roughly 0.5 s unloaded with SHA-NI; a full hash is kept
// rather than sampling, as it is the only check that catches any altered byte.
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

export interface FileDigest {
  size: number;
  sha256: string;
}

const CHUNK = 4 * 1024 * 1024;

/** sha256 of a file, read in chunks. */
export function sha256File(path: string): string {
  const hash = createHash('sha256');
  const buf = Buffer.allocUnsafe(CHUNK);
  const fd = openSync(path, 'r');
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, CHUNK, null);
      if (n === 0) break;
      hash.update(n === CHUNK ? buf : buf.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

/** Size and sha256 of every file of a folder (complete.json excluded), by name. */
export function digestFolder(dir: string, skip: readonly string[] = ['complete.json']): Record<string, FileDigest> {
  const out: Record<string, FileDigest> = {};
  for (const name of readdirSync(dir).sort()) {
    if (skip.includes(name)) continue;
    const path = join(dir, name);
    const st = statSync(path);
    if (!st.isFile()) continue;
    out[name] = { size: st.size, sha256: sha256File(path) };
  }
  return out;
}

/** Why a recorded folder no longer matches its record: the file named and what differs. */
export interface IntegrityProblem {
  file: string;
  reason: 'missing' | 'size' | 'sha256' | 'unrecorded';
  detail: string;
}

/**
 * Checks the folder against `files` (from its complete.json). Returns the first problem, or
 * null when every recorded file is present with its size and hash. A record without `files`
 * (written before hashes were recorded) cannot be trusted: reported as `unrecorded`.
 */
export function verifyFolder(dir: string, files: unknown): IntegrityProblem | null {
  if (!files || typeof files !== 'object' || Object.keys(files).length === 0) {
    return { file: join(dir, 'complete.json'), reason: 'unrecorded', detail: 'no file hashes recorded' };
  }
  const entries = Object.entries(files as Record<string, Partial<FileDigest>>);
  // Sizes first: cheap, and catches truncation without hashing anything.
  for (const [name, want] of entries) {
    const path = join(dir, name);
    if (!existsSync(path)) return { file: path, reason: 'missing', detail: 'file missing' };
    const size = statSync(path).size;
    if (size !== want.size) return { file: path, reason: 'size', detail: `size ${size} bytes, recorded ${want.size}` };
  }
  for (const [name, want] of entries) {
    const path = join(dir, name);
    const got = sha256File(path);
    if (got !== want.sha256) return { file: path, reason: 'sha256', detail: `sha256 ${got.slice(0, 12)}…, recorded ${String(want.sha256).slice(0, 12)}…` };
  }
  return null;
}
