// Makes the inference pool's worker hang or crash, through a task module that only tests load
// (sabotage-tasks.ts). Resolves once the worker has taken the order: the next job it gets is
// the one that hangs or crashes.
import type { WorkerPool } from '../../src/clip/runtime/worker-pool.ts';

export const SABOTAGE_TASKS = new URL('./sabotage-tasks.ts', import.meta.url).href;

const loaded = new WeakSet<WorkerPool>();

/**
 * `hang`: the worker blocks for `ms` right away (the queue fills behind it); `hang-next`: it
 * blocks inside the next task it is given (that task is the stuck one); `crash`: it dies inside
 * the next task.
 */
export async function sabotage(pool: WorkerPool, kind: 'hang' | 'hang-next' | 'crash', ms = 60_000): Promise<void> {
  if (!loaded.has(pool)) {
    await pool.addTaskModule(SABOTAGE_TASKS);
    loaded.add(pool);
  }
  await pool.runTask(kind === 'crash' ? 'test:crash-on-next-task' : `test:${kind}`, { ms });
}
