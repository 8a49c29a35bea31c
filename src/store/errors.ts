// Typed store errors, so the HTTP layer maps each to its status without parsing messages.

/** 404 category_not_found. */
export class CategoryNotFoundError extends Error {
  readonly code = 'category_not_found';
  constructor(readonly categoryId: string) {
    super(`category ${JSON.stringify(categoryId)} does not exist`);
    this.name = 'CategoryNotFoundError';
  }
}

/** 409 reference_limit: nothing of the batch was stored. */
export class ReferenceLimitError extends Error {
  readonly code = 'reference_limit';
  constructor(
    readonly limit: number,
    readonly existing: number,
    readonly adding: number,
  ) {
    super(`a category holds at most ${limit} references: it has ${existing}, adding ${adding} would make ${existing + adding}`);
    this.name = 'ReferenceLimitError';
  }
}

/** 503 store_unavailable: the database cannot be reached or dropped the connection. */
export class StoreUnavailableError extends Error {
  readonly code = 'store_unavailable';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
}

/** The store's schema is newer than this build knows: an older build must not write to it. */
export class StoreSchemaError extends Error {
  readonly code = 'store_schema';
  constructor(
    readonly found: number,
    readonly known: number,
  ) {
    super(`the store is at schema version ${found}, newer than this build's ${known}: run a newer build`);
    this.name = 'StoreSchemaError';
  }
}
