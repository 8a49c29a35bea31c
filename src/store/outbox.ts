// The durable event outbox (at-least-once). Events are enqueued in the transaction of the
// detection they report, one row per delivery sink (webhook, mqtt), claimed under a lease by
// one deliverer of that sink at a time, and removed when delivered or given up. The byte bound drops the oldest undelivered events to make room (see
// EnqueueResult in store.ts); enqueues serialise on one lock so the bound holds across replicas.
import { randomUUID } from 'node:crypto';
import { acquireBlob, releaseBlobs } from './blobs.ts';
import type { StoreContext } from './context.ts';
import { placeholders, toDate, toNumber, type SqlTx } from './sql.ts';
import type { ClaimedEvent, ClaimOptions, EnqueueResult, EventFailure, OutboxEventInput, OutboxStats } from './store.ts';

const DROPPED = 'outbox_dropped';
/** Dropped event ids named in the result (and the warn line): enough to find them, bounded. */
const MAX_LISTED_DROPS = 20;
const GAVE_UP = 'outbox_gave_up';
const DELIVERED = 'outbox_delivered';

/** The sink of rows enqueued without one, and of every row of stores before schema version 3. */
export const DEFAULT_SINK = 'webhook';

async function count(tx: SqlTx, name: string, by: number): Promise<void> {
  if (by === 0) return;
  await tx.run(
    'INSERT INTO store_counters (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = store_counters.value + ?',
    [name, by, by],
  );
}

export class Outbox {
  constructor(private readonly ctx: StoreContext) {}

  /**
   * A transaction enqueues before it touches any blob (recordDetection does): it then never
   * waits for the enqueue lock while holding a blob row that another enqueue, dropping old
   * events, needs to release.
   */
  async enqueue(tx: SqlTx, event: OutboxEventInput): Promise<EnqueueResult> {
    await tx.lock('outbox-enqueue');
    const payload = JSON.stringify(event.payload);
    if (payload === undefined) throw new TypeError('an outbox event payload must be JSON-serialisable');
    const sinks = [...new Set(event.sinks ?? [DEFAULT_SINK])];
    if (sinks.length === 0) throw new TypeError('an outbox event needs at least one sink');
    // Each sink's row is a delivery of its own, so each counts against the bound.
    const rowBytes = Buffer.byteLength(payload) + (event.image?.length ?? 0);
    const bytes = rowBytes * sinks.length;
    const max = this.ctx.outboxMaxBytes;
    if (bytes > max) {
      await count(tx, DROPPED, sinks.length);
      return { queued: false, eventId: null, dropped: sinks.length };
    }
    const total = toNumber((await tx.all('SELECT COALESCE(SUM(bytes), 0) AS total FROM outbox'))[0]!.total);
    const now = this.ctx.clock();
    let dropped = 0;
    const droppedIds = new Set<string>();
    const need = total + bytes - max;
    if (need > 0) {
      // The shortest run of oldest events whose bytes cover what is missing, among those no
      // deliverer holds under a live lease: an event in flight is most likely delivered, and
      // dropping it counted it lost when it was not. The bound is passed meanwhile by at most
      // the rows in flight (a few per deliverer).
      const victims = await tx.all<{ seq: unknown }>(
        'SELECT seq FROM (SELECT seq, SUM(bytes) OVER (ORDER BY seq) - bytes AS prior FROM outbox WHERE lease_expires_at IS NULL OR lease_expires_at <= ?) t WHERE prior < ?',
        [now, need],
      );
      const seqs = victims.map((v) => v.seq);
      for (let i = 0; i < seqs.length; i += 500) {
        const chunk = seqs.slice(i, i + 500);
        const gone = await tx.all<{ image_sha256: string | null; id: string }>(
          `DELETE FROM outbox WHERE seq IN (${placeholders(chunk.length)}) RETURNING image_sha256, id`,
          chunk,
        );
        dropped += gone.length;
        for (const g of gone) droppedIds.add(String(g.id));
        await releaseBlobs(tx, gone.map((g) => g.image_sha256));
      }
      await count(tx, DROPPED, dropped);
    }
    const id = event.id ?? randomUUID();
    for (const sink of sinks) {
      // One blob reference per row: each row releases its own when it goes.
      const sha = event.image ? await acquireBlob(tx, event.image, now) : null;
      await tx.run(
        'INSERT INTO outbox (sink, id, created_at, payload, image_sha256, bytes, attempt, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, 0, ?)',
        [sink, id, now, payload, sha, rowBytes, now],
      );
    }
    return { queued: true, eventId: id, dropped, ...(droppedIds.size ? { droppedEvents: [...droppedIds].slice(0, MAX_LISTED_DROPS) } : {}) };
  }

  async claim(tx: SqlTx, owner: string, options: ClaimOptions): Promise<ClaimedEvent[]> {
    const now = this.ctx.clock();
    const expires = new Date(now.getTime() + options.leaseMs);
    const sink = options.sink ?? DEFAULT_SINK;
    // SKIP LOCKED: a row another replica is claiming right now is left to it, not waited for.
    const rows = await tx.all(
      `UPDATE outbox SET lease_owner = ?, lease_expires_at = ?
       WHERE seq IN (SELECT seq FROM outbox WHERE sink = ? AND next_attempt_at <= ? AND (lease_expires_at IS NULL OR lease_expires_at <= ?)
                     ORDER BY seq LIMIT ?${this.ctx.backend.skipLocked})
       RETURNING seq, sink, id, payload, image_sha256, attempt, created_at, lease_expires_at, last_error`,
      [owner, expires, sink, now, now, Math.max(0, Math.floor(options.limit))],
    );
    rows.sort((a, b) => toNumber(a.seq) - toNumber(b.seq));
    const hashes = [...new Set(rows.map((r) => r.image_sha256).filter((h): h is string => typeof h === 'string'))];
    const images = new Map<string, Buffer>();
    if (hashes.length > 0) {
      const found = await tx.all<{ sha256: string; data: Buffer }>(
        `SELECT sha256, data FROM blobs WHERE sha256 IN (${placeholders(hashes.length)})`,
        hashes,
      );
      for (const b of found) images.set(b.sha256, b.data);
    }
    return rows.map((r) => ({
      id: String(r.id),
      sink: String(r.sink),
      payload: JSON.parse(String(r.payload)),
      image: typeof r.image_sha256 === 'string' ? (images.get(r.image_sha256) ?? null) : null,
      imageSha256: typeof r.image_sha256 === 'string' ? r.image_sha256 : null,
      attempt: Number(r.attempt),
      createdAt: toDate(r.created_at),
      leaseExpiresAt: toDate(r.lease_expires_at),
      lastError: r.last_error === null ? null : String(r.last_error),
    }));
  }

  private async remove(tx: SqlTx, eventId: string, sink: string, owner: string | null): Promise<boolean> {
    const gone = await tx.all<{ image_sha256: string | null }>(
      `DELETE FROM outbox WHERE sink = ? AND id = ?${owner === null ? '' : ' AND lease_owner = ?'} RETURNING image_sha256`,
      owner === null ? [sink, eventId] : [sink, eventId, owner],
    );
    await releaseBlobs(tx, gone.map((g) => g.image_sha256));
    return gone.length > 0;
  }

  async markDelivered(tx: SqlTx, eventId: string, sink = DEFAULT_SINK): Promise<boolean> {
    const removed = await this.remove(tx, eventId, sink, null);
    if (removed) await count(tx, DELIVERED, 1);
    return removed;
  }

  async giveUp(tx: SqlTx, eventId: string, owner: string, sink = DEFAULT_SINK): Promise<boolean> {
    const removed = await this.remove(tx, eventId, sink, owner);
    if (removed) await count(tx, GAVE_UP, 1);
    return removed;
  }

  async markFailed(tx: SqlTx, eventId: string, owner: string, f: EventFailure, sink = DEFAULT_SINK): Promise<boolean> {
    const changed = await tx.run(
      `UPDATE outbox SET attempt = ?, next_attempt_at = ?, last_error = ?, lease_owner = NULL, lease_expires_at = NULL
       WHERE sink = ? AND id = ? AND lease_owner = ?`,
      [f.attempt, f.nextAttemptAt, f.error, sink, eventId, owner],
    );
    return changed > 0;
  }

  async stats(tx: SqlTx): Promise<OutboxStats> {
    const [pending] = await tx.all('SELECT COUNT(*) AS n, COALESCE(SUM(bytes), 0) AS bytes FROM outbox');
    const counters = new Map(
      (await tx.all('SELECT name, value FROM store_counters')).map((r) => [String(r.name), toNumber(r.value)]),
    );
    return {
      pending: toNumber(pending!.n),
      pendingBytes: toNumber(pending!.bytes),
      maxBytes: this.ctx.outboxMaxBytes,
      dropped: counters.get(DROPPED) ?? 0,
      gaveUp: counters.get(GAVE_UP) ?? 0,
      delivered: counters.get(DELIVERED) ?? 0,
    };
  }
}
