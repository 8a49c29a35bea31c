// The one reader of MVTec-layout folders, for the evaluation (src/eval) and for training
// (src/training/dataset.ts):
//   <category>/test/<good|defect-type>/<image>
//   <category>/ground_truth/<defect-type>/<stem>_mask.png
//   <category>/train/good/<image>            (optional: normal images for few-shot references)
// A folder with a `test/` subfolder is a category; roots may nest datasets
// (`shared/data/mpdd/metal_plate`), and a category is then named by its path under the root.
//
// Decisions (documented in the report's notes):
// - label: `good` = normal, every other folder under test/ = defective, its name = defect type.
// - masks are matched by stem: `<stem>_mask.<ext>` first, then `<stem>.<ext>`.
// - a category without ground_truth/ gets image metrics only.
// - a defect image whose mask is missing still counts for the image metrics but is left out
//   of the pixel metrics (treating it as all-normal would count its defect as false positives).
// - a mask is read at a square size, nearest-neighbour (pixel centres), thresholded at > 127
//   (JPEG-safe): readMaskInto.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, extname, join, relative, resolve, sep } from 'node:path';

export const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp']);
const GOOD = 'good';
/** Datasets nest at most this deep under the root (root/dataset/category = 2). */
const MAX_DEPTH = 4;

export interface DatasetImage {
  file: string;
  /** Path under the category folder, e.g. `test/defect/000.png`: unique and readable. */
  name: string;
  /** `good` or the defect type (folder name). */
  type: string;
  /** 1 = defective, 0 = good. */
  label: 0 | 1;
  /** Mask file for a defective image; undefined when it has none (or the category has no masks). */
  mask?: string;
}

export interface Category {
  /** Path under the data root with `/`, e.g. `mpdd/metal_plate`; the folder name for a root category. */
  id: string;
  /** The word(s) put into the prompts, e.g. "metal plate". */
  name: string;
  folder: string;
  hasGroundTruth: boolean;
  images: DatasetImage[];
  /** `train/good` images (normal, outside the test set); empty when the folder is absent. */
  trainGood: DatasetImage[];
  /** Counted problems that change what is measured (missing masks, …). */
  notes: string[];
}

export interface DiscoverOptions {
  /** Category ids or folder names to keep (all when empty); an unknown one is an error. */
  only?: string[];
  /** Prompt names by category id or folder name; default: the folder name with `_`/`-` → space. */
  names?: Record<string, string>;
  /** Keep at most this many images per category, good and defective in proportion (quick runs). */
  limit?: number;
}

export class DatasetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DatasetError';
  }
}

function isDir(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function subfolders(path: string): string[] {
  return readdirSync(path, { withFileTypes: true })
    .filter((d) => (d.isDirectory() || (d.isSymbolicLink() && isDir(join(path, d.name)))) && !d.name.startsWith('.'))
    .map((d) => d.name)
    .sort();
}

function imageFiles(path: string): string[] {
  return readdirSync(path)
    .filter((f) => !f.startsWith('.') && IMAGE_EXTENSIONS.has(extname(f).toLowerCase()))
    .sort();
}

/** "metal_plate" → "metal plate". */
export function promptName(folderName: string): string {
  return folderName.replace(/[_-]+/g, ' ').trim();
}

/** Every category folder under root (root itself when it is one), in path order. */
export function findCategoryFolders(root: string): string[] {
  const found: string[] = [];
  const walk = (dir: string, depth: number): void => {
    if (isDir(join(dir, 'test'))) {
      found.push(dir);
      return; // a category's own subfolders are never categories
    }
    if (depth >= MAX_DEPTH) return;
    for (const name of subfolders(dir)) {
      if (name === 'node_modules') continue;
      walk(join(dir, name), depth + 1);
    }
  };
  walk(root, 0);
  return found;
}

/** Mask files of one defect type by the image stem they belong to (`<stem>_mask` wins over `<stem>`). */
function maskIndex(gtDir: string, type: string): Map<string, string> {
  const index = new Map<string, string>();
  const dir = join(gtDir, type);
  if (!isDir(dir)) return index;
  const files = imageFiles(dir);
  for (const f of files) {
    const stem = basename(f, extname(f));
    if (!stem.endsWith('_mask')) index.set(stem, join(dir, f));
  }
  for (const f of files) {
    const stem = basename(f, extname(f));
    if (stem.endsWith('_mask')) index.set(stem.slice(0, -'_mask'.length), join(dir, f));
  }
  return index;
}

/** Good and defective images in proportion, evenly spaced so the sample spans the folder. */
function sample(images: DatasetImage[], limit: number): DatasetImage[] {
  if (images.length <= limit) return images;
  const take = (group: DatasetImage[], n: number) => Array.from({ length: n }, (_, i) => group[Math.floor((i * group.length) / n)]);
  const good = images.filter((i) => i.label === 0);
  const bad = images.filter((i) => i.label === 1);
  let nGood = Math.round((limit * good.length) / images.length);
  // Keep both classes when both exist, or AUROC is undefined.
  if (good.length && bad.length) nGood = Math.min(Math.max(nGood, 1), limit - 1);
  return [...take(good, nGood), ...take(bad, limit - nGood)];
}

export function readCategory(root: string, folder: string, names: Record<string, string> = {}): Category {
  const rel = relative(root, folder).split(sep).join('/');
  const folderName = basename(folder);
  const id = rel === '' ? folderName : rel;
  const gtDir = join(folder, 'ground_truth');
  const hasGroundTruth = isDir(gtDir);
  const images: DatasetImage[] = [];
  const notes: string[] = [];
  let missingMasks = 0;
  for (const type of subfolders(join(folder, 'test'))) {
    const label = type === GOOD ? 0 : 1;
    const masks = label === 1 && hasGroundTruth ? maskIndex(gtDir, type) : new Map<string, string>();
    for (const file of imageFiles(join(folder, 'test', type))) {
      const image: DatasetImage = { file: join(folder, 'test', type, file), name: `test/${type}/${file}`, type, label };
      if (label === 1 && hasGroundTruth) {
        image.mask = masks.get(basename(file, extname(file)));
        if (!image.mask) missingMasks++;
      }
      images.push(image);
    }
  }
  const trainDir = join(folder, 'train', GOOD);
  const trainGood: DatasetImage[] = isDir(trainDir)
    ? imageFiles(trainDir).map((file) => ({ file: join(trainDir, file), name: `train/${GOOD}/${file}`, type: GOOD, label: 0 as const }))
    : [];
  if (!hasGroundTruth) notes.push('no ground_truth folder: image metrics only');
  if (missingMasks) notes.push(`${missingMasks} defective image(s) without a mask: left out of the pixel metrics`);
  const name = names[id] ?? names[folderName] ?? promptName(folderName);
  return { id, name, folder, hasGroundTruth, images, trainGood, notes };
}

/**
 * The items whose category matches one of `only` by id or folder name (all when `only` is empty),
 * in their order; an unknown name is a DatasetError that lists the categories there are.
 */
export function selectCategories<T>(items: readonly T[], only: readonly string[] | undefined, categoryOf: (item: T) => Category): T[] {
  const wanted = only?.filter((c) => c.length > 0) ?? [];
  if (wanted.length === 0) return [...items];
  const matches = (c: Category, name: string) => c.id === name || basename(c.folder) === name;
  const unknown = wanted.filter((w) => !items.some((item) => matches(categoryOf(item), w)));
  if (unknown.length) {
    throw new DatasetError(`unknown categor${unknown.length > 1 ? 'ies' : 'y'} ${unknown.join(', ')}; found: ${items.map((item) => categoryOf(item).id).join(', ')}`);
  }
  return items.filter((item) => wanted.some((w) => matches(categoryOf(item), w)));
}

/** Categories under root, filtered by `only`; throws a DatasetError that lists what exists. */
export function discoverCategories(root: string, options: DiscoverOptions = {}): Category[] {
  const absRoot = resolve(root);
  if (!existsSync(absRoot)) throw new DatasetError(`data folder ${root} does not exist`);
  if (!isDir(absRoot)) throw new DatasetError(`data folder ${root} is not a folder`);
  let categories = findCategoryFolders(absRoot).map((f) => readCategory(absRoot, f, options.names));
  if (categories.length === 0) {
    throw new DatasetError(`no category under ${root}: expected <category>/test/<good|defect-type>/<images> (MVTec layout)`);
  }
  categories = selectCategories(categories, options.only, (c) => c);
  for (const c of categories) {
    if (c.images.length === 0) throw new DatasetError(`category ${c.id} has no images under ${join(c.folder, 'test')}`);
    if (options.limit !== undefined && c.images.length > options.limit) {
      c.notes.push(`limited to ${options.limit} of ${c.images.length} images`);
      c.images = sample(c.images, options.limit);
    }
  }
  return categories;
}

/** Images and masks per category, for the report. */
export function describeCategory(c: Category) {
  const types: Record<string, number> = {};
  for (const i of c.images) types[i.type] = (types[i.type] ?? 0) + 1;
  const defective = c.images.filter((i) => i.label === 1);
  return {
    id: c.id,
    name: c.name,
    folder: c.folder,
    images: c.images.length,
    good: c.images.length - defective.length,
    defective: defective.length,
    types,
    hasGroundTruth: c.hasGroundTruth,
    trainGood: c.trainGood.length,
    masks: defective.filter((i) => i.mask).length,
    notes: c.notes,
  };
}

/** Mask files are read by the imaging module's reader (nearest at pixel centres, > 127). */
export { readMaskInto } from '../imaging/mask.ts';
