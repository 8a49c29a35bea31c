// Schema migrations, persistence across close/reopen, two stores writing at once, text cache.
import { describe, expect, it } from 'vitest';
import { StoreSchemaError } from '../../../src/store/errors.ts';
import { LATEST_VERSION, MIGRATIONS } from '../../../src/store/migrations.ts';
import { category, detection, features, image, reference } from '../harness.ts';
import type { SuiteContext } from '../harness.ts';

export function lifecycleCases({ fresh, openAt, harness }: SuiteContext): void {
  describe('schema versions', () => {
    it('migrates an empty store to the latest version, once', async () => {
      const { store, location } = await fresh();
      expect(await store.schemaVersion()).toBe(LATEST_VERSION);
      const rows = await location.sql('SELECT version FROM schema_version ORDER BY version');
      expect(rows.map((r) => Number(r.version))).toEqual(MIGRATIONS.map((m) => m.version));
      await store.close();
      const again = await openAt(location);
      expect(await again.schemaVersion()).toBe(LATEST_VERSION);
      expect(await location.sql('SELECT version FROM schema_version')).toHaveLength(MIGRATIONS.length);
    });

    it('migrates a store left at version 1 (before the verdict index), keeping its data', async () => {
      const location = await harness.newLocation();
      await location.migrateTo(1);
      expect(await location.indexNames()).not.toContain('detections_category_verdict');
      // Rows as the previous build wrote them.
      const t = new Date('2025-01-02T03:04:05Z');
      await location.sql(
        `INSERT INTO categories (id, name, default_method, target_false_alarm_rate, notes, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
        ['screw', 'screw', 'winclip', 0.05, 'old', t, t],
      );
      await location.sql(
        `INSERT INTO detections (id, detected_at, category_id, category, method, score, is_anomalous, threshold,
          threshold_source, summary, metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        ['d-old', t, 'screw', 'screw', 'winclip', 0.9, true, 0.5, 'default', 'scratch', '{"line":"1"}'],
      );

      const store = await openAt(location);
      expect(await store.schemaVersion()).toBe(LATEST_VERSION);
      expect(await location.indexNames()).toContain('detections_category_verdict');
      expect(await store.getCategory('screw')).toMatchObject({ defaultMethod: 'winclip', notes: 'old', createdAt: t });
      const [old] = await store.listDetections({ categoryId: 'screw', verdict: 'anomalous', limit: 10 });
      expect(old).toMatchObject({ id: 'd-old', isAnomalous: true, metadata: { line: '1' }, time: t });
    });

    it('refuses a store migrated by a newer build', async () => {
      const { store, location } = await fresh();
      await store.close();
      await location.sql('INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)', [
        LATEST_VERSION + 1,
        'from the future',
        new Date().toISOString(),
      ]);
      const error = await openAt(location).catch((e) => e);
      expect(error).toBeInstanceOf(StoreSchemaError);
      expect(error).toMatchObject({ found: LATEST_VERSION + 1, known: LATEST_VERSION });
    });
  });

  describe('persistence and concurrency', () => {
    it('keeps everything across close and reopen', async () => {
      const { store, location } = await fresh();
      await store.putCategory(category('screw', { notes: 'kept' }));
      await store.setCalibration('screw', { threshold: 0.7 });
      const [ref] = await store.addReferences('screw', [reference('a')], { limit: 10 });
      const { record } = await store.recordDetection(detection({ categoryId: 'screw' }), {
        image: image('seen'),
        event: { id: 'e1', payload: { kept: true } },
      });
      await store.setFeedback(record.id, { label: 'anomalous', note: 'dent' });
      await store.putTextEmbedding('a photo of a screw', new Float32Array([0.5, -1.25, 3]));
      await store.close();

      const reopened = await openAt(location);
      expect(await reopened.getCategory('screw')).toMatchObject({ notes: 'kept', calibration: { threshold: 0.7 }, referenceCount: 1 });
      expect((await reopened.getReferenceImage('screw', ref!.id))?.equals(image('a'))).toBe(true);
      expect((await reopened.loadFeatures('screw', 'ckpt-a'))[0]!.data.equals(features('a', 'ckpt-a'))).toBe(true);
      expect(await reopened.getDetection(record.id)).toMatchObject({ feedback: { label: 'anomalous', note: 'dent' } });
      expect((await reopened.getDetectionImage(record.id))?.equals(image('seen'))).toBe(true);
      expect((await reopened.claimEvents('w', { limit: 5, leaseMs: 1000 })).map((e) => e.payload)).toEqual([{ kept: true }]);
      expect(Array.from((await reopened.getTextEmbedding('a photo of a screw'))!)).toEqual([0.5, -1.25, 3]);
    });

    it('loses no write when two stores on one location write at once', async () => {
      const { store: a, location } = await fresh();
      const b = await openAt(location);
      await a.putCategory(category('screw'));
      const shared = image('same image from two cameras');
      const work = (store: typeof a, tag: string) =>
        Promise.all(
          Array.from({ length: 25 }, async (_, i) => {
            await store.recordDetection(detection({ categoryId: 'screw', summary: `${tag}${i}` }), {
              image: shared,
              event: { payload: { tag, i }, image: shared },
            });
            await store.addReferences('screw', [reference(`${tag}${i}`)], { limit: 1000 });
          }),
        );
      await Promise.all([work(a, 'a'), work(b, 'b')]);
      expect(await a.stats()).toMatchObject({ references: 50, detections: 50, blobs: 1 });
      expect((await b.outboxStats()).pending).toBe(50);
      // Every reference to the shared image was counted: it goes with the last of them.
      await b.pruneDetections({ maxCount: 0 });
      const events = await a.claimEvents('w', { limit: 100, leaseMs: 1000 });
      expect(events).toHaveLength(50);
      for (const e of events.slice(0, 49)) await b.markDelivered(e.id);
      expect((await a.stats()).blobs).toBe(1);
      await a.markDelivered(events[49]!.id);
      expect((await a.stats()).blobs).toBe(0);
    });

    it('uses the limit inside the transaction when two stores add to one category at once', async () => {
      const { store: a, location } = await fresh();
      const b = await openAt(location);
      await a.putCategory(category('screw'));
      const results = await Promise.allSettled(
        Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).addReferences('screw', [reference(`r${i}`), reference(`s${i}`)], { limit: 9 })),
      );
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(4);
      expect(results.filter((r) => r.status === 'rejected').every((r) => (r as PromiseRejectedResult).reason?.code === 'reference_limit')).toBe(true);
      expect((await a.getCategory('screw'))?.referenceCount).toBe(8);
    });
  });

  describe('text embeddings', () => {
    it('gets, puts and overwrites Float32 vectors', async () => {
      const { store } = await fresh();
      expect(await store.getTextEmbedding('k')).toBeNull();
      const backing = new Float32Array([9, 1, 2, 3, 4]);
      await store.putTextEmbedding('k', backing.subarray(1)); // a view at an offset
      expect(Array.from((await store.getTextEmbedding('k'))!)).toEqual([1, 2, 3, 4]);
      await store.putTextEmbedding('k', new Float32Array([Math.PI]));
      expect((await store.getTextEmbedding('k'))![0]).toBe(Math.fround(Math.PI));
    });
  });
}
