// The request deadline (REQUEST_TIMEOUT_MS): the client gets 504 when the detection is not
// done in time. The request's own AbortController is aborted then, so a job still queued
// leaves the queue (the pool drops queued jobs whose signal aborts); a running one finishes in
// its worker and its result is dropped; a worker stuck on it is the pool's JOB_TIMEOUT_MS.
// (One plain controller per request, not AbortSignal.any/timeout: Node keeps those alive while
// they have listeners, and the pool's listeners stay on them.)
import { JobTimeoutError } from '../errors.ts';

export async function withDeadline<T>(ms: number, abort: AbortController, run: (signal: AbortSignal) => Promise<T>): Promise<T> {
  if (!(ms > 0) || !Number.isFinite(ms)) return run(abort.signal);
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      abort.abort();
      reject(new JobTimeoutError(`The detection did not finish within ${Math.round(ms)} ms.`));
    }, ms);
  });
  try {
    return await Promise.race([run(abort.signal), expired]);
  } finally {
    clearTimeout(timer);
  }
}
