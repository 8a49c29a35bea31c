// The small SQL surface the store logic is written against, so both backends run the same
// statements and so the same semantics. SQL uses `?` placeholders; the PostgreSQL adapter
// numbers them. Parameters may be Dates and booleans: each adapter encodes them its own way.

export type Row = Record<string, unknown>;

export interface SqlTx {
  all<T = Row>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  /** Returns the number of rows changed. */
  run(sql: string, params?: readonly unknown[]): Promise<number>;
  /**
   * Serialises the rest of this transaction with every other transaction taking the same lock
   * (PostgreSQL: a transaction-scoped advisory lock; SQLite: nothing, writers are serial).
   */
  lock(name: string): Promise<void>;
}

export interface SqlBackend {
  readonly name: 'sqlite' | 'postgres';
  /** Row lock suffix for a SELECT that is followed by a write of the same row. */
  readonly forUpdate: string;
  /** Row lock suffix that skips rows another transaction holds (outbox claims). */
  readonly skipLocked: string;
  /** Runs fn in one transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(mode: 'read' | 'write', fn: (tx: SqlTx) => Promise<T>): Promise<T>;
  /** Turns a JSON column's value back into a JS value (text on SQLite, parsed jsonb on pg). */
  parseJson(value: unknown): unknown;
  close(): Promise<void>;
}

/** `?, ?, ?` for an IN list of n values. */
export function placeholders(n: number): string {
  return Array.from({ length: n }, () => '?').join(', ');
}

/** A timestamp column's value as a Date (pg gives Dates, SQLite epoch milliseconds). */
export function toDate(value: unknown): Date {
  return value instanceof Date ? value : new Date(Number(value));
}

export function toDateOrNull(value: unknown): Date | null {
  return value === null || value === undefined ? null : toDate(value);
}

/** Counts and sums: pg gives int8 and numeric as strings. */
export function toNumber(value: unknown): number {
  return value === null || value === undefined ? 0 : Number(value);
}

/** The text a JSON column is written with; SQL NULL stays NULL. */
export function jsonParam(value: unknown): string | null {
  return value === null || value === undefined ? null : JSON.stringify(value);
}
