// The one error a failed checkpoint lookup produces at start-up: its message says where we
// looked and how to get the files, so the service can print it as is instead of a stack trace.

export type CheckpointErrorKind =
  | 'invalid-setting'
  | 'local-missing'
  | 'local-incomplete'
  | 'offline-not-cached'
  | 'hub-unreachable'
  | 'repo-not-found'
  | 'revision-not-found'
  | 'unauthorised'
  | 'repo-incomplete'
  | 'download-failed'
  | 'integrity';

export class CheckpointError extends Error {
  override readonly name = 'CheckpointError';

  constructor(
    readonly kind: CheckpointErrorKind,
    message: string,
    /** The folder the checkpoint was looked for in (local folder or cache folder). */
    readonly folder?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
