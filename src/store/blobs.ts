// Content-addressed images: stored once by sha256, with a count of the detection and outbox
// rows that refer to them, taken and released in the same transaction as those rows. A count
// (rather than a sweep for unreferenced blobs) stays right under PostgreSQL concurrency: the
// upsert and the decrement lock the blob's row, so a blob being released and re-acquired at
// once is either kept or deleted and inserted anew, never lost under a new reference.
import { createHash } from 'node:crypto';
import { placeholders, type SqlTx } from './sql.ts';

export function sha256Hex(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Stores the image if new and counts one more reference to it; returns its hash. */
export async function acquireBlob(tx: SqlTx, bytes: Buffer, now: Date): Promise<string> {
  const sha = sha256Hex(bytes);
  await tx.run(
    `INSERT INTO blobs (sha256, data, bytes, refs, created_at) VALUES (?, ?, ?, 1, ?)
     ON CONFLICT (sha256) DO UPDATE SET refs = blobs.refs + 1`,
    [sha, bytes, bytes.length, now],
  );
  return sha;
}

/** One reference fewer to each hash (a hash may repeat); blobs nothing refers to are deleted. */
export async function releaseBlobs(tx: SqlTx, hashes: ReadonlyArray<string | null | undefined>): Promise<void> {
  const counts = new Map<string, number>();
  for (const h of hashes) if (h) counts.set(h, (counts.get(h) ?? 0) + 1);
  if (counts.size === 0) return;
  // Sorted, so two transactions releasing overlapping sets lock rows in one order.
  const sorted = [...counts.keys()].sort();
  for (const sha of sorted) await tx.run('UPDATE blobs SET refs = refs - ? WHERE sha256 = ?', [counts.get(sha), sha]);
  for (let i = 0; i < sorted.length; i += 500) {
    const chunk = sorted.slice(i, i + 500);
    await tx.run(`DELETE FROM blobs WHERE refs <= 0 AND sha256 IN (${placeholders(chunk.length)})`, chunk);
  }
}

export async function readBlob(tx: SqlTx, sha: string): Promise<Buffer | null> {
  const rows = await tx.all<{ data: Buffer }>('SELECT data FROM blobs WHERE sha256 = ?', [sha]);
  return rows[0]?.data ?? null;
}
