// The run progress moved to src/util/progress.ts (one progress module with the download bar);
// these names stay for the callers that import them from here.
export { createProgress, formatDuration, progressLine, type Progress, type ProgressOptions, type ProgressStream } from '../util/progress.ts';
