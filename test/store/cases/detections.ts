// Detection records (query, feedback, retention) and the content-addressed blobs they share.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { category, detection, image, TestClock } from '../harness.ts';
import type { SuiteContext } from '../harness.ts';

const DAY = 24 * 60 * 60 * 1000;

export function detectionCases({ fresh }: SuiteContext): void {
  describe('detections', () => {
    it('records, reads back and lists newest first by category and verdict', async () => {
      const clock = new TestClock();
      const { store } = await fresh({ clock: clock.now });
      await store.putCategory(category('screw'));
      const ids: string[] = [];
      for (let i = 0; i < 6; i++) {
        clock.advance(1000);
        const { record, event } = await store.recordDetection(
          detection({
            categoryId: i < 4 ? 'screw' : null,
            category: i < 4 ? 'screw' : 'bottle',
            isAnomalous: i % 2 === 1,
            score: i / 10,
            metadata: { camera: `cam-${i}`, 'lot number': 'L-7' },
          }),
        );
        expect(event).toBeNull();
        ids.push(record.id);
      }
      const first = await store.getDetection(ids[1]!);
      expect(first).toEqual({
        id: ids[1],
        time: new Date(clock.ms - 4000),
        categoryId: 'screw',
        category: 'screw',
        method: 'dense-frequency',
        score: 0.1,
        isAnomalous: true,
        threshold: 0.5,
        thresholdSource: 'default',
        summary: 'no anomaly found',
        metadata: { camera: 'cam-1', 'lot number': 'L-7' },
        imageSha256: null,
        feedback: null,
      });
      expect(await store.getDetection('no-such-id')).toBeNull();

      const ofAll = await store.listDetections({ limit: 50 });
      expect(ofAll.map((d) => d.id)).toEqual([...ids].reverse());
      expect((await store.listDetections({ categoryId: 'screw', limit: 50 })).map((d) => d.id)).toEqual([ids[3], ids[2], ids[1], ids[0]]);
      expect((await store.listDetections({ categoryId: 'screw', verdict: 'anomalous', limit: 50 })).map((d) => d.id)).toEqual([ids[3], ids[1]]);
      expect((await store.listDetections({ categoryId: 'screw', verdict: 'normal', limit: 1 })).map((d) => d.id)).toEqual([ids[2]]);
      expect((await store.listDetections({ category: 'bottle', limit: 50 })).map((d) => d.id)).toEqual([ids[5], ids[4]]);
      expect(await store.listDetections({ categoryId: 'nut', limit: 50 })).toEqual([]);
    });

    it('takes feedback, and keeps detections when their category is deleted', async () => {
      const clock = new TestClock();
      const { store } = await fresh({ clock: clock.now });
      await store.putCategory(category('screw'));
      const { record } = await store.recordDetection(detection({ categoryId: 'screw', isAnomalous: true }));
      clock.advance(5000);
      const withFeedback = await store.setFeedback(record.id, { label: 'normal', note: 'glare, not a scratch' });
      expect(withFeedback?.feedback).toEqual({ label: 'normal', note: 'glare, not a scratch', at: new Date(clock.ms) });
      const at = new Date('2025-04-01T00:00:00Z');
      expect((await store.setFeedback(record.id, { label: 'anomalous', at }))?.feedback).toEqual({ label: 'anomalous', note: null, at });
      expect(await store.setFeedback('no-such-id', { label: 'normal' })).toBeNull();

      await store.deleteCategory('screw');
      const kept = await store.getDetection(record.id);
      expect(kept).toMatchObject({ categoryId: null, category: 'screw', feedback: { label: 'anomalous' } });
    });

    it('prunes by count and by age, oldest first', async () => {
      const clock = new TestClock();
      const { store } = await fresh({ clock: clock.now });
      const ids: string[] = [];
      for (let i = 0; i < 10; i++) {
        ids.push((await store.recordDetection(detection({ summary: `d${i}` }))).record.id);
        clock.advance(DAY);
      }
      // Now is 10 days after the first: keep 7 days, i.e. detections 3..9 (day 3 is exactly 7 days old).
      expect(await store.pruneDetections({ maxAgeDays: 7 })).toBe(3);
      expect((await store.listDetections({ limit: 50 })).map((d) => d.id)).toEqual(ids.slice(3).reverse());
      expect(await store.pruneDetections({ maxCount: 4 })).toBe(3);
      expect((await store.listDetections({ limit: 50 })).map((d) => d.id)).toEqual(ids.slice(6).reverse());
      expect(await store.pruneDetections({ maxCount: 4, maxAgeDays: 7 })).toBe(0);
      expect(await store.pruneDetections({})).toBe(0);
      expect(await store.pruneDetections({ maxCount: 0 })).toBe(4);
      expect((await store.stats()).detections).toBe(0);
    });
  });

  describe('blobs', () => {
    it('stores an image once however many detections and events refer to it, and collects it after the last', async () => {
      const clock = new TestClock();
      const { store } = await fresh({ clock: clock.now });
      const png = image('part', 4000);
      const sha = createHash('sha256').update(png).digest('hex');
      const a = await store.recordDetection(detection(), { image: png });
      clock.advance(DAY);
      const b = await store.recordDetection(detection(), { image: png, event: { payload: { n: 1 }, image: png } });
      clock.advance(DAY);
      await store.recordDetection(detection(), { image: image('other', 100) });
      expect(a.record.imageSha256).toBe(sha);
      expect(b.record.imageSha256).toBe(sha);
      expect(await store.stats()).toMatchObject({ detections: 3, blobs: 2, blobBytes: 4100 });
      expect((await store.getDetectionImage(a.record.id))?.equals(png)).toBe(true);
      expect((await store.getBlob(sha))?.equals(png)).toBe(true);

      // The first detection goes: the image stays for the second and the event.
      await store.pruneDetections({ maxAgeDays: 1.5 });
      expect(await store.getBlob(sha)).not.toBeNull();
      // Both detections go: the undelivered event still holds it.
      await store.pruneDetections({ maxCount: 0 });
      expect(await store.stats()).toMatchObject({ detections: 0, blobs: 1, blobBytes: 4000 });
      const [claimed] = await store.claimEvents('w1', { limit: 1, leaseMs: 1000 });
      expect(claimed!.image?.equals(png)).toBe(true);
      expect(await store.markDelivered(claimed!.id)).toBe(true);
      expect(await store.getBlob(sha)).toBeNull();
      expect(await store.stats()).toMatchObject({ blobs: 0, blobBytes: 0 });
    });

    it('keeps no blob for detections without an image', async () => {
      const { store } = await fresh();
      const { record } = await store.recordDetection(detection());
      expect(record.imageSha256).toBeNull();
      expect(await store.getDetectionImage(record.id)).toBeNull();
      expect((await store.stats()).blobs).toBe(0);
    });
  });
}
