// A task module for the inference workers that makes one misbehave, loaded by tests only
// (pool.addTaskModule, or taskModules at start): production workers have no such hooks.
import { parentPort } from 'node:worker_threads';
import type { TaskHandler } from '../../src/clip/runtime/worker-protocol.ts';

export const tasks: Record<string, TaskHandler> = {
  /** Answers at once, then blocks the thread for `ms`, as a stuck native call would. */
  async 'test:hang'(_ctx, { ms }: { ms: number }) {
    setTimeout(() => {
      const end = Date.now() + ms;
      while (Date.now() < end);
    }, 0);
    return { result: null };
  },
  /**
   * Answers, then blocks the thread for `ms` inside the next task it is given, so that task is
   * the stuck one (a block on a timer can race the next task, which may finish first).
   */
  async 'test:hang-next'(_ctx, { ms }: { ms: number }) {
    parentPort!.once('message', () => {
      const end = Date.now() + ms;
      while (Date.now() < end);
    });
    return { result: null };
  },
  /** Answers, then the worker dies inside the next task it is given (as a native fault would). */
  async 'test:crash-on-next-task'() {
    // Runs after the worker's own listener has started that task, before it can answer.
    parentPort!.once('message', () => process.exit(3));
    return { result: null };
  },
};
