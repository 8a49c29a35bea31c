// Categories, their references and the references' features.
import { randomUUID } from 'node:crypto';
import { sha256Hex } from './blobs.ts';
import { nfc, type StoreContext } from './context.ts';
import { CategoryNotFoundError, ReferenceLimitError } from './errors.ts';
import { jsonParam, placeholders, toDate, toNumber, type Row, type SqlTx } from './sql.ts';
import type {
  AddReferencesOptions,
  CategoryInput,
  CategoryRecord,
  NewReference,
  ReferenceFeatures,
  ReferenceRecord,
} from './store.ts';

const CATEGORY_COLUMNS = `c.id, c.name, c.default_method, c.target_false_alarm_rate, c.notes, c.created_at, c.updated_at,
  c.calibration, (SELECT COUNT(*) FROM category_references r WHERE r.category_id = c.id) AS reference_count`;

const REFERENCE_COLUMNS = `id, category_id, width, height, bytes, sha256, added_at, thumbnail,
  CASE WHEN image IS NULL THEN 0 ELSE 1 END AS has_image`;

export class Catalog {
  constructor(private readonly ctx: StoreContext) {}

  private category(row: Row): CategoryRecord {
    return {
      id: String(row.id),
      name: String(row.name),
      defaultMethod: String(row.default_method),
      targetFalseAlarmRate: Number(row.target_false_alarm_rate),
      notes: String(row.notes),
      createdAt: toDate(row.created_at),
      updatedAt: toDate(row.updated_at),
      calibration: row.calibration === null ? null : this.ctx.backend.parseJson(row.calibration),
      referenceCount: toNumber(row.reference_count),
    };
  }

  private reference(row: Row): ReferenceRecord {
    return {
      id: String(row.id),
      categoryId: String(row.category_id),
      width: Number(row.width),
      height: Number(row.height),
      bytes: Number(row.bytes),
      sha256: String(row.sha256),
      addedAt: toDate(row.added_at),
      thumbnail: row.thumbnail as Buffer,
      hasImage: Number(row.has_image) === 1,
    };
  }

  async getCategory(tx: SqlTx, id: string): Promise<CategoryRecord | null> {
    const rows = await tx.all(`SELECT ${CATEGORY_COLUMNS} FROM categories c WHERE c.id = ?`, [nfc(id)]);
    return rows[0] ? this.category(rows[0]) : null;
  }

  async listCategories(tx: SqlTx): Promise<CategoryRecord[]> {
    const rows = await tx.all(`SELECT ${CATEGORY_COLUMNS} FROM categories c ORDER BY c.id`);
    return rows.map((r) => this.category(r));
  }

  async putCategory(tx: SqlTx, input: CategoryInput): Promise<{ category: CategoryRecord; created: boolean }> {
    const id = nfc(input.id);
    const now = this.ctx.clock();
    const updated = await tx.run(
      'UPDATE categories SET name = ?, default_method = ?, target_false_alarm_rate = ?, notes = ?, updated_at = ? WHERE id = ?',
      [input.name, input.defaultMethod, input.targetFalseAlarmRate, input.notes, now, id],
    );
    if (updated === 0) {
      // Two creators at once on PostgreSQL: the second one's insert turns into nothing and
      // its update above already missed, so it updates again below.
      const inserted = await tx.run(
        `INSERT INTO categories (id, name, default_method, target_false_alarm_rate, notes, created_at, updated_at, calibration)
         VALUES (?, ?, ?, ?, ?, ?, ?, NULL) ON CONFLICT (id) DO NOTHING`,
        [id, input.name, input.defaultMethod, input.targetFalseAlarmRate, input.notes, now, now],
      );
      if (inserted === 0) return this.putCategory(tx, input);
    }
    return { category: (await this.getCategory(tx, id))!, created: updated === 0 };
  }

  async setCalibration(tx: SqlTx, id: string, calibration: unknown): Promise<CategoryRecord | null> {
    const changed = await tx.run('UPDATE categories SET calibration = ?, updated_at = ? WHERE id = ?', [
      jsonParam(calibration),
      this.ctx.clock(),
      nfc(id),
    ]);
    return changed === 0 ? null : this.getCategory(tx, id);
  }

  async deleteCategory(tx: SqlTx, id: string): Promise<boolean> {
    return (await tx.run('DELETE FROM categories WHERE id = ?', [nfc(id)])) > 0;
  }

  async addReferences(
    tx: SqlTx,
    categoryId: string,
    references: NewReference[],
    options: AddReferencesOptions,
  ): Promise<ReferenceRecord[]> {
    const id = nfc(categoryId);
    // The category row lock serialises concurrent uploads to one category, so the count below
    // is still true when the inserts commit.
    const found = await tx.all(`SELECT id FROM categories WHERE id = ?${this.ctx.backend.forUpdate}`, [id]);
    if (found.length === 0) throw new CategoryNotFoundError(id);
    // An image the category already holds (same bytes) is not stored twice: two requests racing
    // with the same image add it once (the service leaves out the duplicates it can see first).
    const held = new Set((await tx.all('SELECT sha256 FROM category_references WHERE category_id = ?', [id])).map((r) => String(r.sha256)));
    const fresh: Array<{ ref: NewReference; sha: string }> = [];
    for (const ref of references) {
      const sha = sha256Hex(ref.image);
      if (held.has(sha)) continue;
      held.add(sha);
      fresh.push({ ref, sha });
    }
    const existing = toNumber((await tx.all('SELECT COUNT(*) AS n FROM category_references WHERE category_id = ?', [id]))[0]!.n);
    if (existing + fresh.length > options.limit) throw new ReferenceLimitError(options.limit, existing, fresh.length);
    if (fresh.length === 0) return [];
    const keep = options.keepImages ?? true;
    const now = this.ctx.clock();
    const ids: string[] = [];
    for (const { ref, sha } of fresh) {
      const refId = ref.id ?? randomUUID();
      await tx.run(
        `INSERT INTO category_references (id, category_id, width, height, bytes, sha256, added_at, thumbnail, image)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        [refId, id, ref.width, ref.height, ref.image.length, sha, now, ref.thumbnail, keep ? ref.image : null],
      );
      for (const f of ref.features) {
        await tx.run('INSERT INTO reference_features (reference_id, feature_key, shape, data) VALUES (?, ?, ?, ?)', [
          refId,
          f.featureKey,
          JSON.stringify(f.shape),
          f.data,
        ]);
      }
      ids.push(refId);
    }
    await this.touch(tx, id, now);
    const rows = await tx.all(
      `SELECT ${REFERENCE_COLUMNS} FROM category_references WHERE id IN (${placeholders(ids.length)}) ORDER BY seq`,
      ids,
    );
    return rows.map((r) => this.reference(r));
  }

  async listReferences(tx: SqlTx, categoryId: string): Promise<ReferenceRecord[]> {
    const rows = await tx.all(`SELECT ${REFERENCE_COLUMNS} FROM category_references WHERE category_id = ? ORDER BY seq`, [
      nfc(categoryId),
    ]);
    return rows.map((r) => this.reference(r));
  }

  async getReferenceImage(tx: SqlTx, categoryId: string, referenceId: string): Promise<Buffer | null> {
    const rows = await tx.all<{ image: Buffer | null }>('SELECT image FROM category_references WHERE id = ? AND category_id = ?', [
      referenceId,
      nfc(categoryId),
    ]);
    return rows[0]?.image ?? null;
  }

  async deleteReference(tx: SqlTx, categoryId: string, referenceId: string): Promise<boolean> {
    const deleted = (await tx.run('DELETE FROM category_references WHERE id = ? AND category_id = ?', [referenceId, nfc(categoryId)])) > 0;
    if (deleted) await this.touch(tx, nfc(categoryId), this.ctx.clock());
    return deleted;
  }

  /**
   * A change to a category's references moves its updatedAt, so a reader's cache of the
   * category's feature memory (keyed by updatedAt) notices it, in this process or another.
   */
  private async touch(tx: SqlTx, id: string, now: Date): Promise<void> {
    await tx.run('UPDATE categories SET updated_at = ? WHERE id = ?', [now, id]);
  }

  async loadFeatures(tx: SqlTx, categoryId: string, featureKey: string): Promise<ReferenceFeatures[]> {
    const rows = await tx.all(
      `SELECT f.reference_id, f.shape, f.data FROM reference_features f
       JOIN category_references r ON r.id = f.reference_id
       WHERE r.category_id = ? AND f.feature_key = ? ORDER BY r.seq`,
      [nfc(categoryId), featureKey],
    );
    return rows.map((r) => ({
      referenceId: String(r.reference_id),
      shape: this.ctx.backend.parseJson(r.shape),
      data: r.data as Buffer,
    }));
  }

  async categoriesNeedingFeatures(tx: SqlTx, featureKey: string): Promise<string[]> {
    const rows = await tx.all(
      `SELECT DISTINCT r.category_id FROM category_references r
       WHERE NOT EXISTS (SELECT 1 FROM reference_features f WHERE f.reference_id = r.id AND f.feature_key = ?)
       ORDER BY r.category_id`,
      [featureKey],
    );
    return rows.map((r) => String(r.category_id));
  }

  async replaceFeatures(tx: SqlTx, categoryId: string, featureKey: string, features: ReferenceFeatures[]): Promise<number> {
    const id = nfc(categoryId);
    const found = await tx.all(`SELECT id FROM categories WHERE id = ?${this.ctx.backend.forUpdate}`, [id]);
    if (found.length === 0) throw new CategoryNotFoundError(id);
    await tx.run(
      `DELETE FROM reference_features WHERE feature_key = ?
       AND reference_id IN (SELECT id FROM category_references WHERE category_id = ?)`,
      [featureKey, id],
    );
    const live = new Set(
      (await tx.all('SELECT id FROM category_references WHERE category_id = ?', [id])).map((r) => String(r.id)),
    );
    let written = 0;
    for (const f of features) {
      if (!live.has(f.referenceId)) continue;
      await tx.run('INSERT INTO reference_features (reference_id, feature_key, shape, data) VALUES (?, ?, ?, ?)', [
        f.referenceId,
        featureKey,
        JSON.stringify(f.shape),
        f.data,
      ]);
      written++;
    }
    await this.touch(tx, id, this.ctx.clock());
    return written;
  }
}
