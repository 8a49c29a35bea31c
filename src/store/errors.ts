// Typed store errors, so the HTTP layer maps each to its status without parsing messages: each
// extends its entry of the error catalogue (src/errors.ts), which carries the code and status.
import { ServiceError } from '../errors.ts';

/** 404 category_not_found. */
export class CategoryNotFoundError extends ServiceError {
  constructor(readonly categoryId: string) {
    super(404, 'category_not_found', `category ${JSON.stringify(categoryId)} does not exist`);
    this.name = 'CategoryNotFoundError';
  }
}

/** 409 reference_limit: nothing of the batch was stored. */
export class ReferenceLimitError extends ServiceError {
  constructor(
    readonly limit: number,
    readonly existing: number,
    readonly adding: number,
  ) {
    super(409, 'reference_limit', `a category holds at most ${limit} references: it has ${existing}, adding ${adding} would make ${existing + adding}`);
    this.name = 'ReferenceLimitError';
  }
}

/** 503 store_unavailable: the database cannot be reached or dropped the connection. */
export class StoreUnavailableError extends ServiceError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(503, 'store_unavailable', message, { 'retry-after': '5' }, options);
    this.name = 'StoreUnavailableError';
  }
}

/** The store's schema is newer than this build knows: an older build must not write to it. */
export class StoreSchemaError extends ServiceError {
  constructor(
    readonly found: number,
    readonly known: number,
  ) {
    super(500, 'store_schema', `the store is at schema version ${found}, newer than this build's ${known}: run a newer build`);
    this.name = 'StoreSchemaError';
  }
}
