// Categories, references (atomic add with the limit) and features per featureKey.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CategoryNotFoundError, ReferenceLimitError } from '../../../src/store/errors.ts';
import { category, features, image, reference, TestClock } from '../harness.ts';
import type { SuiteContext } from '../harness.ts';

export function catalogCases({ fresh }: SuiteContext): void {
  describe('categories', () => {
    it('creates, reads, updates, lists and deletes', async () => {
      const clock = new TestClock();
      const { store } = await fresh({ clock: clock.now });
      const put = await store.putCategory(category('screw', { notes: 'M4', targetFalseAlarmRate: 0.02 }));
      expect(put.created).toBe(true);
      expect(put.category).toMatchObject({
        id: 'screw',
        name: 'screw',
        defaultMethod: 'dense-frequency',
        targetFalseAlarmRate: 0.02,
        notes: 'M4',
        calibration: null,
        referenceCount: 0,
      });
      expect(put.category.createdAt.getTime()).toBe(clock.ms);

      clock.advance(60_000);
      const updated = await store.putCategory(category('screw', { name: 'metal screw', defaultMethod: 'winclip' }));
      expect(updated.created).toBe(false);
      expect(updated.category.name).toBe('metal screw');
      expect(updated.category.defaultMethod).toBe('winclip');
      expect(updated.category.createdAt.getTime()).toBe(clock.ms - 60_000);
      expect(updated.category.updatedAt.getTime()).toBe(clock.ms);

      await store.putCategory(category('bottle'));
      expect((await store.listCategories()).map((c) => c.id)).toEqual(['bottle', 'screw']);
      expect(await store.getCategory('nut')).toBeNull();

      expect(await store.deleteCategory('screw')).toBe(true);
      expect(await store.deleteCategory('screw')).toBe(false);
      expect(await store.getCategory('screw')).toBeNull();
      expect((await store.listCategories()).map((c) => c.id)).toEqual(['bottle']);
    });

    it('treats composed and decomposed spellings of an id as one (NFC)', async () => {
      const { store } = await fresh();
      const composed = 'caf\u00e9 cup';
      const decomposed = 'cafe\u0301 cup';
      expect((await store.putCategory(category(decomposed))).category.id).toBe(composed);
      expect((await store.getCategory(composed))?.id).toBe(composed);
      expect((await store.putCategory(category(composed))).created).toBe(false);
      await store.addReferences(decomposed, [reference('r')], { limit: 5 });
      expect(await store.listReferences(composed)).toHaveLength(1);
    });

    it('keeps a calibration across updates and clears it on request', async () => {
      const { store } = await fresh();
      await store.putCategory(category('screw'));
      const calibration = { source: 'images', m: 20, threshold: 0.61, scores: [0.1, 0.2], guarantee: 'P(false alarm) ≤ 0.01' };
      expect((await store.setCalibration('screw', calibration))?.calibration).toEqual(calibration);
      await store.putCategory(category('screw', { notes: 'changed' }));
      expect((await store.getCategory('screw'))?.calibration).toEqual(calibration);
      expect((await store.setCalibration('screw', null))?.calibration).toBeNull();
      expect(await store.setCalibration('nut', calibration)).toBeNull();
    });
  });

  describe('references', () => {
    it('stores an image once per category: one already held, or given twice, is left out; another category may hold it too', async () => {
      const { store } = await fresh();
      await store.putCategory(category('screw'));
      await store.putCategory(category('bottle'));
      const [a] = await store.addReferences('screw', [reference('a')], { limit: 3 });
      const before = (await store.getCategory('screw'))!.updatedAt;
      expect(await store.addReferences('screw', [reference('a')], { limit: 3 })).toEqual([]);
      expect((await store.getCategory('screw'))!.updatedAt).toEqual(before);
      // The limit counts what is stored: 1 held + b (c twice) = 3 ≤ 3.
      const added = await store.addReferences('screw', [reference('b'), reference('a'), reference('c'), reference('c')], { limit: 3 });
      expect(added.map((r) => r.sha256)).toEqual(['b', 'c'].map((t) => createHash('sha256').update(image(t)).digest('hex')));
      expect((await store.listReferences('screw')).map((r) => r.id)).toEqual([a!.id, ...added.map((r) => r.id)]);
      expect(await store.addReferences('bottle', [reference('a')], { limit: 3 })).toHaveLength(1);
    });

    it('adds a batch with features, lists it without blobs, serves the image, deletes one', async () => {
      const { store } = await fresh();
      await store.putCategory(category('screw'));
      const added = await store.addReferences('screw', [reference('a'), reference('b'), reference('c')], { limit: 10 });
      expect(added.map((r) => r.sha256)).toEqual(['a', 'b', 'c'].map((t) => createHash('sha256').update(image(t)).digest('hex')));
      expect(added[0]).toMatchObject({ categoryId: 'screw', width: 32, height: 24, bytes: 256, hasImage: true });
      expect(added[0]!.thumbnail.equals(image('thumb:a', 40))).toBe(true);

      const listed = await store.listReferences('screw');
      expect(listed).toEqual(added);
      expect(Object.keys(listed[0]!)).not.toContain('image');
      expect((await store.getReferenceImage('screw', added[1]!.id))?.equals(image('b'))).toBe(true);
      expect(await store.getReferenceImage('bottle', added[1]!.id)).toBeNull();
      expect((await store.getCategory('screw'))?.referenceCount).toBe(3);

      expect(await store.deleteReference('screw', added[1]!.id)).toBe(true);
      expect(await store.deleteReference('screw', added[1]!.id)).toBe(false);
      expect((await store.listReferences('screw')).map((r) => r.id)).toEqual([added[0]!.id, added[2]!.id]);
      expect((await store.loadFeatures('screw', 'ckpt-a')).map((f) => f.referenceId)).toEqual([added[0]!.id, added[2]!.id]);
    });

    it('records size and hash but not the bytes when images are not kept', async () => {
      const { store } = await fresh();
      await store.putCategory(category('screw'));
      const [ref] = await store.addReferences('screw', [reference('a')], { limit: 10, keepImages: false });
      expect(ref).toMatchObject({ bytes: 256, hasImage: false });
      expect(await store.getReferenceImage('screw', ref!.id)).toBeNull();
    });

    it('refuses a batch that would pass the limit, storing none of it', async () => {
      const { store } = await fresh();
      await store.putCategory(category('screw'));
      await store.addReferences('screw', [reference('a'), reference('b'), reference('c')], { limit: 4 });
      const error = await store.addReferences('screw', [reference('d'), reference('e')], { limit: 4 }).catch((e) => e);
      expect(error).toBeInstanceOf(ReferenceLimitError);
      expect(error).toMatchObject({ code: 'reference_limit', limit: 4, existing: 3, adding: 2 });
      expect(await store.listReferences('screw')).toHaveLength(3);
      await store.addReferences('screw', [reference('d')], { limit: 4 });
      expect((await store.getCategory('screw'))?.referenceCount).toBe(4);
    });

    it('stores nothing of a batch that fails midway', async () => {
      const { store } = await fresh();
      await store.putCategory(category('screw'));
      await store.addReferences('screw', [reference('a')], { limit: 10 });
      const broken = reference('c');
      broken.features.push({ ...broken.features[0]! }); // the same featureKey twice: the insert fails
      await expect(store.addReferences('screw', [reference('b'), broken, reference('d')], { limit: 10 })).rejects.toThrow();
      expect((await store.listReferences('screw')).map((r) => r.sha256)).toEqual([createHash('sha256').update(image('a')).digest('hex')]);
      expect(await store.loadFeatures('screw', 'ckpt-a')).toHaveLength(1);
    });

    it('refuses references for a category that does not exist', async () => {
      const { store } = await fresh();
      const error = await store.addReferences('nut', [reference('a')], { limit: 10 }).catch((e) => e);
      expect(error).toBeInstanceOf(CategoryNotFoundError);
      expect(error).toMatchObject({ code: 'category_not_found', categoryId: 'nut' });
    });

    it('deletes references and their features with the category', async () => {
      const { store } = await fresh();
      await store.putCategory(category('screw'));
      await store.addReferences('screw', [reference('a')], { limit: 10 });
      await store.deleteCategory('screw');
      await store.putCategory(category('screw'));
      expect(await store.listReferences('screw')).toEqual([]);
      expect(await store.loadFeatures('screw', 'ckpt-a')).toEqual([]);
      expect((await store.stats()).references).toBe(0);
    });
  });

  describe('features', () => {
    it('keeps features per featureKey, in insertion order', async () => {
      const { store } = await fresh();
      await store.putCategory(category('screw'));
      const refs = await store.addReferences('screw', [reference('a', ['ckpt-a', 'ckpt-b']), reference('b', ['ckpt-a'])], { limit: 10 });
      await store.addReferences('screw', [reference('c', ['ckpt-a'])], { limit: 10 });
      const a = await store.loadFeatures('screw', 'ckpt-a');
      expect(a.map((f) => f.data)).toEqual(['a', 'b', 'c'].map((t) => features(t, 'ckpt-a')));
      expect(a[0]!.shape).toEqual({ patches: 4, dims: 12, dtype: 'fp16' });
      const b = await store.loadFeatures('screw', 'ckpt-b');
      expect(b.map((f) => f.referenceId)).toEqual([refs[0]!.id]);
      expect(await store.loadFeatures('screw', 'ckpt-z')).toEqual([]);
    });

    it('finds categories needing re-embedding and replaces their features', async () => {
      const { store } = await fresh();
      for (const id of ['bottle', 'screw', 'empty']) await store.putCategory(category(id));
      const screw = await store.addReferences('screw', [reference('s1'), reference('s2'), reference('s3')], { limit: 10 });
      await store.addReferences('bottle', [reference('b1', ['ckpt-a', 'ckpt-b'])], { limit: 10 });
      expect(await store.categoriesNeedingFeatures('ckpt-a')).toEqual([]);
      expect(await store.categoriesNeedingFeatures('ckpt-b')).toEqual(['screw']);
      expect(await store.categoriesNeedingFeatures('ckpt-c')).toEqual(['bottle', 'screw']);

      // Re-embedding computed for three references, one of which was deleted meanwhile.
      await store.deleteReference('screw', screw[1]!.id);
      const fresh3 = screw.map((r, i) => ({ referenceId: r.id, shape: { v: 2 }, data: Buffer.from([i, i, i, i]) }));
      expect(await store.replaceFeatures('screw', 'ckpt-b', fresh3)).toBe(2);
      expect(await store.categoriesNeedingFeatures('ckpt-b')).toEqual([]);
      const loaded = await store.loadFeatures('screw', 'ckpt-b');
      expect(loaded).toEqual([
        { referenceId: screw[0]!.id, shape: { v: 2 }, data: Buffer.from([0, 0, 0, 0]) },
        { referenceId: screw[2]!.id, shape: { v: 2 }, data: Buffer.from([2, 2, 2, 2]) },
      ]);
      // Replacing again overwrites instead of adding, and leaves other keys alone.
      await store.replaceFeatures('screw', 'ckpt-b', fresh3.slice(0, 1));
      expect(await store.loadFeatures('screw', 'ckpt-b')).toHaveLength(1);
      expect(await store.loadFeatures('screw', 'ckpt-a')).toHaveLength(2);
      await expect(store.replaceFeatures('nut', 'ckpt-b', [])).rejects.toBeInstanceOf(CategoryNotFoundError);
    });
  });
}
