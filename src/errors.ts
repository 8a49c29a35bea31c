// The error catalogue: every failure the service reports has a stable code and carries its
// HTTP status, as Fastify's own errors do (`createError(code, message, statusCode)`). Any layer
// may throw these; the HTTP error handler only reads `statusCode`, `code` and `headers`, so no
// module below the routes needs to know about HTTP.

export class ServiceError extends Error {
  /** The request fields a validation error is about (`threshold`, `metadata.station`): in the body as `fields`. */
  fields?: readonly string[];

  constructor(
    /** HTTP status the client gets. */
    readonly statusCode: number,
    /** Stable machine-readable code: the `error` field of every error body. */
    readonly code: string,
    message: string,
    /** Extra response headers (e.g. Retry-After). */
    readonly headers: Record<string, string> = {},
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'ServiceError';
  }
}

/** An error class with a fixed code and status, for `instanceof` checks and a readable name. */
function defineError(name: string, code: string, statusCode: number, headers: Record<string, string> = {}) {
  const cls = class extends ServiceError {
    constructor(message: string, options?: ErrorOptions & { headers?: Record<string, string> }) {
      super(statusCode, code, message, { ...headers, ...options?.headers }, options);
      this.name = name;
    }
  };
  Object.defineProperty(cls, 'name', { value: name });
  return cls;
}

// 4xx: the client's mistakes.
export const BadRequestError = defineError('BadRequestError', 'bad_request', 400);
export const UnauthorizedError = defineError('UnauthorizedError', 'unauthorized', 401);
export const NotFoundError = defineError('NotFoundError', 'not_found', 404);
export const ReferenceNotFoundError = defineError('ReferenceNotFoundError', 'reference_not_found', 404);
export const DetectionNotFoundError = defineError('DetectionNotFoundError', 'detection_not_found', 404);
export const MapExpiredError = defineError('MapExpiredError', 'map_expired', 404);
export const MapTooLargeError = defineError('MapTooLargeError', 'map_too_large', 413);
export const ConflictError = defineError('ConflictError', 'conflict', 409);
export const RateLimitedError = defineError('RateLimitedError', 'rate_limited', 429);
export const RequestTimeoutError = defineError('RequestTimeoutError', 'request_timeout', 408);
export const PayloadTooLargeError = defineError('PayloadTooLargeError', 'payload_too_large', 413);
export const ImageTooLargeError = defineError('ImageTooLargeError', 'image_too_large', 413);
export const UnsupportedMediaTypeError = defineError('UnsupportedMediaTypeError', 'unsupported_media_type', 415);
export const ImageDecodeError = defineError('ImageDecodeError', 'undecodable_image', 422);
export const UnprocessableError = defineError('UnprocessableError', 'unprocessable', 422);

// Store errors (category_not_found, reference_limit, store_unavailable) are in src/store/errors.ts.

// 5xx: the service's own state or faults.
export const InternalError = defineError('InternalError', 'internal_error', 500);
export const WorkerFailedError = defineError('WorkerFailedError', 'inference_failed', 500);
export const QueueFullError = defineError('QueueFullError', 'overloaded', 503, { 'retry-after': '1' });
/** The refusal of a detection for a full queue, the same wherever it is refused (the gate, the routes). */
export const queueFullError = () => new QueueFullError('The service is busy (the detection queue is full); retry shortly.');
export const ModelLoadingError = defineError('ModelLoadingError', 'model_loading', 503, { 'retry-after': '5' });
export const ModelUnavailableError = defineError('ModelUnavailableError', 'model_unavailable', 503);
/** EXECUTION_PROVIDER names a provider the installed ONNX Runtime lacks: start-up stops with it. */
export const ExecutionProviderUnavailableError = defineError('ExecutionProviderUnavailableError', 'execution_provider_unavailable', 503);
export const JobTimeoutError = defineError('JobTimeoutError', 'timeout', 504);

export const badRequest = (message: string) => new BadRequestError(message);
