// What the store's statements share: the backend, the clock, the outbox bound.
import type { SqlBackend } from './sql.ts';

export interface StoreContext {
  backend: SqlBackend;
  clock: () => Date;
  outboxMaxBytes: number;
}

export const DEFAULT_OUTBOX_MAX_BYTES = 256 * 1024 * 1024;

/** Category ids are compared NFC-normalised, whatever form the request spelled them in. */
export function nfc(id: string): string {
  return id.normalize('NFC');
}
