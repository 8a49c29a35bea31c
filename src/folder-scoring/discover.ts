// The images of an unlabelled folder: every file with an image extension, at any depth, in a
// stable order (paths compared as text), named by their path under the folder with `/`.
import { readdirSync, statSync } from 'node:fs';
import { extname, join, relative, sep } from 'node:path';
import { IMAGE_EXTENSIONS } from '../dataset/mvtec.ts';

export class FolderError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FolderError';
  }
}

export interface FolderImage {
  file: string;
  /** Path under the scored folder with `/`, e.g. `line-2/0001.png`. */
  path: string;
}

/**
 * Hidden files and folders (a leading dot) are skipped; symbolic links are followed, each folder
 * walked once (by device and inode): a link back up the tree (`parent -> ..`) once walked the same
 * folders until the path was too long for the system (ELOOP).
 */
export function listFolderImages(root: string): FolderImage[] {
  let isDir: boolean;
  try {
    isDir = statSync(root).isDirectory();
  } catch {
    throw new FolderError(`data folder ${root} does not exist`);
  }
  if (!isDir) throw new FolderError(`${root} is not a folder`);
  const found: FolderImage[] = [];
  const walked = new Set<string>();
  const walk = (dir: string) => {
    const id = statSync(dir);
    const key = `${id.dev}:${id.ino}`;
    if (walked.has(key)) return;
    walked.add(key);
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.name.startsWith('.')) continue;
      const file = join(dir, entry.name);
      const kind = entry.isSymbolicLink() ? statSync(file, { throwIfNoEntry: false }) : entry;
      if (kind?.isDirectory()) walk(file);
      else if (kind?.isFile() && IMAGE_EXTENSIONS.has(extname(entry.name).toLowerCase())) found.push({ file, path: relative(root, file).split(sep).join('/') });
    }
  };
  walk(root);
  found.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  if (!found.length) throw new FolderError(`no images (${[...IMAGE_EXTENSIONS].join(', ')}) in ${root}`);
  return found;
}

/**
 * `count` items in ⌈count / limit⌉ consecutive chunks whose sizes differ by at most one, so no
 * chunk is much smaller than the others (a batch-only method needs a minimum per chunk).
 */
export function balancedChunks(count: number, limit: number): Array<{ from: number; to: number }> {
  if (count <= 0) return [];
  const n = Math.ceil(count / Math.max(1, limit));
  const base = Math.floor(count / n);
  const extra = count % n;
  const out: Array<{ from: number; to: number }> = [];
  let from = 0;
  for (let i = 0; i < n; i++) {
    const to = from + base + (i < extra ? 1 : 0);
    out.push({ from, to });
    from = to;
  }
  return out;
}
