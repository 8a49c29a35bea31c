// Picks the store backend from STORE_URL: postgres:// or postgresql:// is PostgreSQL, no URL is
// SQLite in the data folder. Any other URL is refused rather than quietly meaning a local file:
// replicas that each wrote their own SQLite would not share anything.
import { openPostgresStore, type PostgresStoreOptions } from './postgres-store.ts';
import { openSqliteStore, type SqliteStoreOptions } from './sqlite-store.ts';
import type { Store } from './store.ts';

export interface OpenStoreOptions extends Omit<SqliteStoreOptions, 'dataDir'>, Omit<PostgresStoreOptions, 'url'> {
  /** STORE_URL: postgres://… selects PostgreSQL; absent or empty, SQLite. */
  url?: string;
  /** Where SQLite keeps <dataDir>/store.sqlite. */
  dataDir: string;
}

export function isPostgresUrl(url: string | undefined): boolean {
  return url !== undefined && /^postgres(ql)?:\/\//i.test(url);
}

export async function openStore(options: OpenStoreOptions): Promise<Store> {
  const { url, dataDir, ...rest } = options;
  if (url !== undefined && isPostgresUrl(url)) return openPostgresStore({ ...rest, url });
  if (url !== undefined && url !== '') {
    throw new Error(`store URL ${JSON.stringify(url.replace(/\/\/[^@/]*@/, '//…@'))} is not postgres:// or postgresql://; leave it unset for SQLite in the data folder`);
  }
  return openSqliteStore({ ...rest, dataDir });
}
