// An abort signal that fires after a time or when a parent signal aborts. Built from one
// AbortController and its own setTimeout on purpose: in Node 20, AbortSignal.any() over an
// AbortSignal.timeout() can stop firing once the timeout signal has been garbage-collected.

export interface TimeoutSignal {
  signal: AbortSignal;
  /** Stops the timer and forgets the parent; call when the guarded work is over. */
  clear(): void;
}

export function timeoutSignal(ms: number, parent?: AbortSignal): TimeoutSignal {
  const controller = new AbortController();
  const onParentAbort = () => controller.abort(parent?.reason);
  const timer = setTimeout(() => controller.abort(new DOMException(`timed out after ${ms} ms`, 'TimeoutError')), ms);
  if (parent?.aborted) onParentAbort();
  else parent?.addEventListener('abort', onParentAbort, { once: true });
  return {
    signal: controller.signal,
    clear() {
      clearTimeout(timer);
      parent?.removeEventListener('abort', onParentAbort);
    },
  };
}
