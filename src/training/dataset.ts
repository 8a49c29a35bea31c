// Training images from MVTec-layout folders (read by src/dataset/mvtec.ts, as the evaluation
// reads them) and the seeded, stratified validation split.
// - A category without ground_truth/ is left out: the map loss needs masks.
// - A defective image without a mask is left out (an all-normal mask would teach the defect
//   is normal); both are counted in the notes.
// - Good images train with an empty mask.
import { resolve } from 'node:path';
import { DatasetError, discoverCategories, selectCategories, type Category } from '../dataset/mvtec.ts';
import type { FeatureItem } from './feature-cache.ts';
import { seededRandom, shuffled } from '../util/rng.ts';

export interface TrainingImage extends FeatureItem {
  /** Category id as the evaluation names it (its path under the root). */
  category: string;
  root: string;
}

export interface TrainingData {
  images: TrainingImage[];
  categories: Array<{ root: string; id: string; name: string; good: number; defective: number }>;
  notes: string[];
}

export interface CollectOptions {
  /** Category ids or folder names to keep (all when empty); unknown ones are an error. */
  only?: string[];
  names?: Record<string, string>;
  /** At most this many images per category (quick runs). */
  limit?: number;
}

export function collectTrainingData(roots: readonly string[], options: CollectOptions = {}): TrainingData {
  if (roots.length === 0) throw new DatasetError('no data folder given');
  const found: Array<{ root: string; category: Category }> = [];
  for (const root of roots) {
    for (const category of discoverCategories(root, { names: options.names, limit: options.limit })) found.push({ root: resolve(root), category });
  }
  const kept = selectCategories(found, options.only, (f) => f.category);
  const data: TrainingData = { images: [], categories: [], notes: [] };
  for (const { root, category } of kept) {
    if (!category.hasGroundTruth) {
      data.notes.push(`${category.id}: no ground_truth folder, left out (the map loss needs masks)`);
      continue;
    }
    let good = 0;
    let defective = 0;
    let unmasked = 0;
    for (const image of category.images) {
      if (image.label === 1 && !image.mask) {
        unmasked++;
        continue;
      }
      data.images.push({ file: image.file, ...(image.mask ? { mask: image.mask } : {}), label: image.label, category: category.id, root });
      if (image.label) defective++;
      else good++;
    }
    if (unmasked) data.notes.push(`${category.id}: ${unmasked} defective image(s) without a mask left out`);
    data.notes.push(...category.notes.filter((n) => !/without a mask|no ground_truth/.test(n)).map((n) => `${category.id}: ${n}`));
    data.categories.push({ root, id: category.id, name: category.name, good, defective });
  }
  if (data.images.length === 0) throw new DatasetError(`no usable training image (categories need ground_truth masks) under ${roots.join(', ')}`);
  return data;
}

/**
 * Indices of the validation images: `fraction` of each (category, label) group, rounded, at
 * least one from every group of two or more when fraction > 0, chosen by the seeded PRNG.
 */
export function validationSplit(images: ReadonlyArray<{ category: string; label: 0 | 1 }>, fraction: number, seed: number): { train: number[]; validation: number[] } {
  if (!(fraction >= 0 && fraction < 1)) throw new RangeError(`validation fraction must be in [0, 1), got ${fraction}`);
  const random = seededRandom(seed ^ 0x5eed);
  const groups = new Map<string, number[]>();
  images.forEach((img, i) => {
    const key = `${img.category}\u0000${img.label}`;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key)!.push(i);
  });
  const validation: number[] = [];
  for (const key of [...groups.keys()].sort()) {
    const members = groups.get(key)!;
    let take = Math.round(members.length * fraction);
    if (fraction > 0 && members.length >= 2) take = Math.min(Math.max(take, 1), members.length - 1);
    validation.push(...shuffled(members, random).slice(0, take));
  }
  const isValidation = new Set(validation);
  return { train: images.map((_, i) => i).filter((i) => !isValidation.has(i)), validation: validation.sort((a, b) => a - b) };
}
