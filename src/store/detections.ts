// Detection records: insert (with the image blob), query, feedback and retention.
import { randomUUID } from 'node:crypto';
import { acquireBlob, readBlob, releaseBlobs } from './blobs.ts';
import { nfc, type StoreContext } from './context.ts';
import { toDate, toDateOrNull, type Row, type SqlTx } from './sql.ts';
import type { DetectionQuery, DetectionRecord, NewDetection, RetentionPolicy, Verdict } from './store.ts';

const COLUMNS = `id, detected_at, category_id, category, method, score, is_anomalous, threshold, threshold_source,
  summary, metadata, image_sha256, feedback_label, feedback_note, feedback_at`;

const DAY_MS = 24 * 60 * 60 * 1000;

export class Detections {
  constructor(private readonly ctx: StoreContext) {}

  private record(row: Row): DetectionRecord {
    const feedbackAt = toDateOrNull(row.feedback_at);
    return {
      id: String(row.id),
      time: toDate(row.detected_at),
      categoryId: row.category_id === null ? null : String(row.category_id),
      category: String(row.category),
      method: String(row.method),
      score: Number(row.score),
      isAnomalous: Boolean(row.is_anomalous),
      threshold: Number(row.threshold),
      thresholdSource: String(row.threshold_source),
      summary: String(row.summary),
      metadata: this.ctx.backend.parseJson(row.metadata) as Record<string, string>,
      imageSha256: row.image_sha256 === null ? null : String(row.image_sha256),
      feedback:
        row.feedback_label === null || feedbackAt === null
          ? null
          : { label: row.feedback_label as Verdict, note: row.feedback_note === null ? null : String(row.feedback_note), at: feedbackAt },
    };
  }

  async insert(tx: SqlTx, d: NewDetection, image?: Buffer): Promise<DetectionRecord> {
    const id = d.id ?? randomUUID();
    const now = this.ctx.clock();
    const sha = image ? await acquireBlob(tx, image, now) : null;
    await tx.run(
      `INSERT INTO detections (id, detected_at, category_id, category, method, score, is_anomalous, threshold,
        threshold_source, summary, metadata, image_sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [
        id,
        d.time ?? now,
        d.categoryId === null ? null : nfc(d.categoryId),
        d.category,
        d.method,
        d.score,
        d.isAnomalous,
        d.threshold,
        d.thresholdSource,
        d.summary,
        JSON.stringify(d.metadata),
        sha,
      ],
    );
    return (await this.get(tx, id))!;
  }

  async get(tx: SqlTx, id: string): Promise<DetectionRecord | null> {
    const rows = await tx.all(`SELECT ${COLUMNS} FROM detections WHERE id = ?`, [id]);
    return rows[0] ? this.record(rows[0]) : null;
  }

  async list(tx: SqlTx, q: DetectionQuery): Promise<DetectionRecord[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (q.categoryId === null) where.push('category_id IS NULL');
    else if (q.categoryId !== undefined) {
      where.push('category_id = ?');
      params.push(nfc(q.categoryId));
    }
    if (q.category !== undefined) {
      where.push('category = ?');
      params.push(q.category);
    }
    if (q.verdict !== undefined) {
      where.push('is_anomalous = ?');
      params.push(q.verdict === 'anomalous');
    }
    params.push(Math.max(0, Math.floor(q.limit)));
    const rows = await tx.all(
      `SELECT ${COLUMNS} FROM detections ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq DESC LIMIT ?`,
      params,
    );
    return rows.map((r) => this.record(r));
  }

  async image(tx: SqlTx, id: string): Promise<Buffer | null> {
    const rows = await tx.all<{ image_sha256: string | null }>('SELECT image_sha256 FROM detections WHERE id = ?', [id]);
    const sha = rows[0]?.image_sha256;
    return sha ? readBlob(tx, sha) : null;
  }

  async setFeedback(tx: SqlTx, id: string, f: { label: Verdict; note?: string | null; at?: Date }): Promise<DetectionRecord | null> {
    const changed = await tx.run('UPDATE detections SET feedback_label = ?, feedback_note = ?, feedback_at = ? WHERE id = ?', [
      f.label,
      f.note ?? null,
      f.at ?? this.ctx.clock(),
      id,
    ]);
    return changed === 0 ? null : this.get(tx, id);
  }

  async prune(tx: SqlTx, policy: RetentionPolicy): Promise<number> {
    const released: Array<string | null> = [];
    if (policy.maxAgeDays !== undefined) {
      const cutoff = new Date(this.ctx.clock().getTime() - policy.maxAgeDays * DAY_MS);
      const gone = await tx.all<{ image_sha256: string | null }>('DELETE FROM detections WHERE detected_at < ? RETURNING image_sha256', [cutoff]);
      released.push(...gone.map((r) => r.image_sha256));
    }
    if (policy.maxCount !== undefined) {
      // Everything at or below the seq of the (maxCount+1)-th newest goes.
      const gone = await tx.all<{ image_sha256: string | null }>(
        `DELETE FROM detections WHERE seq <= (SELECT seq FROM detections ORDER BY seq DESC LIMIT 1 OFFSET ?)
         RETURNING image_sha256`,
        [Math.max(0, Math.floor(policy.maxCount))],
      );
      released.push(...gone.map((r) => r.image_sha256));
    }
    await releaseBlobs(tx, released);
    return released.length;
  }
}
