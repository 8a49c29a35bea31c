// Category discovery on folder trees made here (discovery never opens the images, so empty
// files stand in for them).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DatasetError, describeCategory, discoverCategories, promptName } from '../../src/dataset/mvtec.ts';

let root: string;

function touch(...parts: string[]): void {
  const file = join(root, ...parts);
  mkdirSync(join(file, '..'), { recursive: true });
  writeFileSync(file, '');
}

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'eval-dataset-'));
  // A nested root: two datasets with one category each.
  for (const f of ['000.png', '001.png', '002.jpg']) touch('alpha', 'metal_plate', 'test', 'good', f);
  for (const f of ['000.png', '001.png', '002.png']) touch('alpha', 'metal_plate', 'test', 'scratch', f);
  touch('alpha', 'metal_plate', 'ground_truth', 'scratch', '000_mask.png');
  touch('alpha', 'metal_plate', 'ground_truth', 'scratch', '001.png'); // plain-stem fallback
  touch('alpha', 'metal_plate', 'ground_truth', 'scratch', '001_mask.png'); // …which _mask beats
  // 002 has no mask at all.
  touch('alpha', 'metal_plate', 'test', 'good', 'notes.txt'); // not an image
  touch('alpha', 'metal_plate', 'test', 'good', '.hidden.png');
  touch('beta', 'magnetic-tile', 'test', 'good', 'a.jpg');
  touch('beta', 'magnetic-tile', 'test', 'crack', 'b.JPG');
  touch('beta', 'magnetic-tile', 'test', 'fray', 'c.jpeg');
  mkdirSync(join(root, 'beta', 'empty-folder'), { recursive: true });
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('discoverCategories', () => {
  it('finds categories under a nested root and names them by their path', () => {
    const cats = discoverCategories(root);
    expect(cats.map((c) => c.id)).toEqual(['alpha/metal_plate', 'beta/magnetic-tile']);
    expect(cats.map((c) => c.name)).toEqual(['metal plate', 'magnetic tile']);
  });

  it('labels good as normal, other folders as defect types, and matches masks by stem', () => {
    const [plate] = discoverCategories(root, { only: ['alpha/metal_plate'] });
    expect(plate.hasGroundTruth).toBe(true);
    expect(plate.images.map((i) => [i.name, i.label])).toEqual([
      ['test/good/000.png', 0],
      ['test/good/001.png', 0],
      ['test/good/002.jpg', 0],
      ['test/scratch/000.png', 1],
      ['test/scratch/001.png', 1],
      ['test/scratch/002.png', 1],
    ]);
    const masks = plate.images.map((i) => i.mask?.slice(root.length + 1));
    expect(masks).toEqual([
      undefined,
      undefined,
      undefined,
      'alpha/metal_plate/ground_truth/scratch/000_mask.png',
      'alpha/metal_plate/ground_truth/scratch/001_mask.png',
      undefined,
    ]);
    expect(plate.notes).toEqual(['1 defective image(s) without a mask: left out of the pixel metrics']);
    expect(describeCategory(plate)).toMatchObject({ images: 6, good: 3, defective: 3, masks: 2, types: { good: 3, scratch: 3 } });
  });

  it('a category without ground_truth gets image metrics only', () => {
    const [tile] = discoverCategories(root, { only: ['magnetic-tile'] });
    expect(tile.hasGroundTruth).toBe(false);
    expect(tile.images.every((i) => i.mask === undefined)).toBe(true);
    expect(tile.images.map((i) => i.type)).toEqual(['crack', 'fray', 'good']); // upper-case extension found too
    expect(tile.notes).toContain('no ground_truth folder: image metrics only');
  });

  it('a root that is itself a category is named by its folder', () => {
    const cats = discoverCategories(join(root, 'alpha', 'metal_plate'));
    expect(cats.map((c) => c.id)).toEqual(['metal_plate']);
  });

  it('takes prompt names from --names by id or by folder name', () => {
    const cats = discoverCategories(root, { names: { 'alpha/metal_plate': 'steel sheet', 'magnetic-tile': 'ferrite tile' } });
    expect(cats.map((c) => c.name)).toEqual(['steel sheet', 'ferrite tile']);
    expect(promptName('metal_plate')).toBe('metal plate');
    expect(promptName('pcb__board-2')).toBe('pcb board 2');
  });

  it('rejects unknown categories, listing the ones found', () => {
    expect(() => discoverCategories(root, { only: ['metal_plate', 'bottle'] })).toThrow(DatasetError);
    expect(() => discoverCategories(root, { only: ['bottle'] })).toThrow(/unknown category bottle; found: alpha\/metal_plate, beta\/magnetic-tile/);
  });

  it('explains a missing folder and a folder without categories', () => {
    expect(() => discoverCategories(join(root, 'nope'))).toThrow(/does not exist/);
    expect(() => discoverCategories(join(root, 'beta', 'empty-folder'))).toThrow(/no category under/);
  });

  it('--limit keeps good and defective images in proportion, both classes present', () => {
    const [plate] = discoverCategories(root, { only: ['metal_plate'], limit: 2 });
    expect(plate.images.map((i) => i.label).sort()).toEqual([0, 1]);
    expect(plate.notes).toContain('limited to 2 of 6 images');
    const [all] = discoverCategories(root, { only: ['metal_plate'], limit: 100 });
    expect(all.images).toHaveLength(6);
  });
});
