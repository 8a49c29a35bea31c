// The webhook outbox: atomic enqueue with the detection, leases, retries, the byte bound.
import { describe, expect, it } from 'vitest';
import { detection, image, TestClock } from '../harness.ts';
import type { SuiteContext } from '../harness.ts';

export function outboxCases({ fresh, openAt, harness }: SuiteContext): void {
  describe('outbox', () => {
    it('migrates outbox rows of a version 2 store to webhook rows, still due', async () => {
      const location = await harness.newLocation();
      await location.migrateTo(2);
      const t = new Date('2025-01-02T03:04:05Z');
      await location.sql(
        'INSERT INTO outbox (id, created_at, payload, bytes, attempt, next_attempt_at, last_error) VALUES (?, ?, ?, ?, ?, ?, ?)',
        ['e-old', t, '{"old":true}', 12, 2, t, 'HTTP 502'],
      );
      const store = await openAt(location);
      const [old] = await store.claimEvents('w', { limit: 10, leaseMs: 1000 });
      expect(old).toMatchObject({ id: 'e-old', sink: 'webhook', payload: { old: true }, attempt: 2, lastError: 'HTTP 502' });
      expect(await store.claimEvents('m', { limit: 10, leaseMs: 1000, sink: 'mqtt' })).toEqual([]);
      // The same id may now be queued for another sink beside it.
      expect(await store.enqueueEvent({ id: 'e-old', payload: {}, sinks: ['mqtt'] })).toMatchObject({ queued: true });
      expect(await store.markDelivered('e-old')).toBe(true);
    });

    it('enqueues with the detection, in one transaction', async () => {
      const { store } = await fresh();
      const { record, event } = await store.recordDetection(detection({ id: 'd-1', isAnomalous: true }), {
        event: { id: 'e-1', payload: { type: 'detection.anomalous', detectionId: 'd-1', text: 'crème brûlée' } },
      });
      expect(record.id).toBe('d-1');
      expect(event).toEqual({ queued: true, eventId: 'e-1', dropped: 0 });
      // The same detection id again fails, and its event is not queued either.
      await expect(store.recordDetection(detection({ id: 'd-1' }), { event: { id: 'e-2', payload: {} } })).rejects.toThrow();
      const stats = await store.outboxStats();
      expect(stats).toMatchObject({ pending: 1, dropped: 0, gaveUp: 0, delivered: 0 });
      expect(stats.pendingBytes).toBe(Buffer.byteLength(JSON.stringify({ type: 'detection.anomalous', detectionId: 'd-1', text: 'crème brûlée' })));
      const [claimed] = await store.claimEvents('w1', { limit: 10, leaseMs: 1000 });
      expect(claimed).toMatchObject({ id: 'e-1', payload: { text: 'crème brûlée' }, image: null, imageSha256: null, attempt: 0, lastError: null });
    });

    it('leases claims to one owner until delivered, failed or expired', async () => {
      const clock = new TestClock();
      const { store } = await fresh({ clock: clock.now });
      for (let i = 0; i < 5; i++) {
        await store.enqueueEvent({ id: `e${i}`, payload: { i }, ...(i === 0 ? { image: image('overlay') } : {}) });
        clock.advance(10);
      }
      const first = await store.claimEvents('w1', { limit: 3, leaseMs: 30_000 });
      expect(first.map((e) => e.id)).toEqual(['e0', 'e1', 'e2']);
      expect(first[0]!.image?.equals(image('overlay'))).toBe(true);
      expect(first[0]!.leaseExpiresAt).toEqual(new Date(clock.ms + 30_000));
      expect((await store.claimEvents('w2', { limit: 10, leaseMs: 30_000 })).map((e) => e.id)).toEqual(['e3', 'e4']);
      expect(await store.claimEvents('w2', { limit: 10, leaseMs: 30_000 })).toEqual([]);

      expect(await store.markDelivered('e0')).toBe(true);
      expect(await store.markDelivered('e0')).toBe(false);
      // w1 fails e1: it is due again in a minute, not before.
      expect(await store.markFailed('e1', 'w1', { attempt: 1, nextAttemptAt: new Date(clock.ms + 60_000), error: 'HTTP 502' })).toBe(true);
      expect(await store.markFailed('e1', 'w1', { attempt: 1, nextAttemptAt: new Date(clock.ms), error: 'again' })).toBe(false);
      expect(await store.claimEvents('w2', { limit: 10, leaseMs: 30_000 })).toEqual([]);

      // w1's lease on e2 and w2's on e3, e4 expire: anyone may take them, oldest first.
      clock.advance(30_000);
      const retaken = await store.claimEvents('w3', { limit: 10, leaseMs: 30_000 });
      expect(retaken.map((e) => e.id)).toEqual(['e2', 'e3', 'e4']);
      // The old owner no longer holds e2.
      expect(await store.markFailed('e2', 'w1', { attempt: 1, nextAttemptAt: new Date(clock.ms), error: 'late' })).toBe(false);
      expect(await store.giveUp('e2', 'w1')).toBe(false);

      clock.advance(30_000);
      const retry = await store.claimEvents('w3', { limit: 10, leaseMs: 30_000 });
      expect(retry.map((e) => e.id)).toEqual(['e1', 'e2', 'e3', 'e4']);
      expect(retry[0]).toMatchObject({ attempt: 1, lastError: 'HTTP 502' });
      expect(await store.giveUp('e1', 'w3')).toBe(true);
      for (const id of ['e2', 'e3', 'e4']) expect(await store.markDelivered(id)).toBe(true);
      expect(await store.outboxStats()).toMatchObject({ pending: 0, pendingBytes: 0, delivered: 4, gaveUp: 1, dropped: 0 });
      expect((await store.stats()).blobs).toBe(0);
    });

    it('drops the oldest undelivered events when the byte bound is reached, and counts them', async () => {
      const payload = (i: number) => ({ i, pad: 'x'.repeat(84) }); // 100 bytes of JSON for i < 10
      const { store } = await fresh({ outboxMaxBytes: 1000 });
      for (let i = 0; i < 10; i++) expect((await store.enqueueEvent({ id: `e${i}`, payload: payload(i) })).dropped).toBe(0);
      expect(await store.outboxStats()).toMatchObject({ pending: 10, pendingBytes: 1000, maxBytes: 1000 });

      // 100 bytes more: the oldest goes. 250 bytes (an image): the three oldest left go.
      expect(await store.enqueueEvent({ id: 'e10', payload: { i: 0, pad: 'y'.repeat(84) } })).toEqual({ queued: true, eventId: 'e10', dropped: 1, droppedEvents: ['e0'] });
      const withImage = await store.enqueueEvent({ id: 'e11', payload: payload(1), image: image('overlay', 150) });
      expect(withImage).toEqual({ queued: true, eventId: 'e11', dropped: 3, droppedEvents: ['e1', 'e2', 'e3'] });
      let stats = await store.outboxStats();
      expect(stats).toMatchObject({ pending: 8, dropped: 4 });
      expect(stats.pendingBytes).toBeLessThanOrEqual(1000);

      // Larger than the whole bound: refused and counted, nothing else dropped.
      expect(await store.enqueueEvent({ id: 'big', payload: { pad: 'z'.repeat(1000) } })).toEqual({ queued: false, eventId: null, dropped: 1 });
      stats = await store.outboxStats();
      expect(stats).toMatchObject({ pending: 8, dropped: 5 });
      const ids = (await store.claimEvents('w', { limit: 100, leaseMs: 1000 })).map((e) => e.id);
      expect(ids).toEqual(['e4', 'e5', 'e6', 'e7', 'e8', 'e9', 'e10', 'e11']);
      expect((await store.stats()).blobs).toBe(1);
      // Those eight are now in flight (leased): the next enqueue finds nothing it may drop, and
      // the bound is passed by the rows in flight rather than losing an event about to be delivered.
      expect(await store.enqueueEvent({ id: 'e12', payload: payload(2) })).toEqual({ queued: true, eventId: 'e12', dropped: 0 });
      expect(await store.outboxStats()).toMatchObject({ pending: 9, dropped: 5 });
    });

    it('keeps one row per sink: each sink claims, fails, delivers and gives up its own', async () => {
      const { store } = await fresh();
      const both = await store.enqueueEvent({ id: 'e-both', payload: { n: 1 }, image: image('overlay'), sinks: ['webhook', 'mqtt'] });
      expect(both).toEqual({ queued: true, eventId: 'e-both', dropped: 0 });
      await store.enqueueEvent({ id: 'e-hook', payload: { n: 2 } }); // no sinks named: webhook only
      const bytes = Buffer.byteLength(JSON.stringify({ n: 1 })) + image('overlay').length;
      expect(await store.outboxStats()).toMatchObject({ pending: 3, pendingBytes: 2 * bytes + Buffer.byteLength(JSON.stringify({ n: 2 })) });

      const hooks = await store.claimEvents('h', { limit: 10, leaseMs: 60_000 });
      expect(hooks.map((e) => [e.id, e.sink])).toEqual([['e-both', 'webhook'], ['e-hook', 'webhook']]);
      const mqtt = await store.claimEvents('m', { limit: 10, leaseMs: 60_000, sink: 'mqtt' });
      expect(mqtt.map((e) => [e.id, e.sink])).toEqual([['e-both', 'mqtt']]);
      expect(mqtt[0]!.image?.equals(image('overlay'))).toBe(true);

      // The webhook delivers; the MQTT row of the same event is still there, with its image.
      expect(await store.markDelivered('e-both')).toBe(true);
      expect(await store.markDelivered('e-both')).toBe(false);
      expect((await store.stats()).blobs).toBe(1);
      expect(await store.markFailed('e-both', 'h', { attempt: 1, nextAttemptAt: new Date(), error: 'x' }, 'mqtt')).toBe(false); // not h's
      expect(await store.markFailed('e-both', 'm', { attempt: 1, nextAttemptAt: new Date(0), error: 'broker down' }, 'mqtt')).toBe(true);
      const again = await store.claimEvents('m2', { limit: 10, leaseMs: 60_000, sink: 'mqtt' });
      expect(again).toMatchObject([{ id: 'e-both', sink: 'mqtt', attempt: 1, lastError: 'broker down' }]);
      expect(await store.giveUp('e-both', 'm2')).toBe(false); // the webhook row is gone; sink says which
      expect(await store.giveUp('e-both', 'm2', 'mqtt')).toBe(true);
      expect(await store.markDelivered('e-hook', 'webhook')).toBe(true);
      expect(await store.outboxStats()).toMatchObject({ pending: 0, pendingBytes: 0, delivered: 2, gaveUp: 1 });
      expect((await store.stats()).blobs).toBe(0);
    });

    it('an event for two sinks counts twice against the byte bound, and is refused or dropped per row', async () => {
      const { store } = await fresh({ outboxMaxBytes: 300 });
      const payload = { pad: 'x'.repeat(90) }; // 100 bytes
      expect(await store.enqueueEvent({ id: 'a', payload, sinks: ['webhook', 'mqtt'] })).toMatchObject({ queued: true, dropped: 0 });
      // 200 bytes more: the oldest row (a's webhook row) goes, a's MQTT row stays.
      expect(await store.enqueueEvent({ id: 'b', payload, sinks: ['webhook', 'mqtt'] })).toMatchObject({ queued: true, dropped: 1 });
      expect(await store.outboxStats()).toMatchObject({ pending: 3, pendingBytes: 300, dropped: 1 });
      expect((await store.claimEvents('m', { limit: 10, leaseMs: 1000, sink: 'mqtt' })).map((e) => e.id)).toEqual(['a', 'b']);
      expect(await store.enqueueEvent({ id: 'c', payload: { pad: 'y'.repeat(190) }, sinks: ['webhook', 'mqtt'] })).toEqual({ queued: false, eventId: null, dropped: 2 });
      expect(await store.outboxStats()).toMatchObject({ pending: 3, dropped: 3 });
    });

    it('gives each event to exactly one of two stores claiming at once', async () => {
      const { store: a, location } = await fresh();
      const b = await openAt(location);
      const total = 120;
      for (let i = 0; i < total; i++) await a.enqueueEvent({ id: `e${String(i).padStart(3, '0')}`, payload: { i } });
      const drain = async (store: typeof a, owner: string) => {
        const got: string[] = [];
        for (;;) {
          const batch = await store.claimEvents(owner, { limit: 7, leaseMs: 60_000 });
          if (batch.length === 0) return got;
          got.push(...batch.map((e) => e.id));
        }
      };
      const [fromA, fromB, fromA2] = await Promise.all([drain(a, 'a'), drain(b, 'b'), drain(a, 'a2')]);
      const all = [...fromA, ...fromB, ...fromA2];
      expect(all).toHaveLength(total);
      expect(new Set(all).size).toBe(total);
      expect(fromA.length + fromA2.length).toBeGreaterThan(0);
      expect(fromB.length).toBeGreaterThan(0);
    });
  });
}
