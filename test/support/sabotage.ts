// Makes the inference pool's worker hang or crash, through a task module that only tests load
// (sabotage-tasks.ts). Resolves once the worker has taken the order: the next job it gets is
// the one that hangs or crashes.
import type { WorkerPool } from '../../src/clip/runtime/worker-pool.ts';

export const SABOTAGE_TASKS = new URL('./sabotage-tasks.ts', import.meta.url).href;

const loaded = new WeakSet<WorkerPool>();

export async function sabotage(pool: WorkerPool, kind: 'hang' | 'crash', ms = 60_000): Promise<void> {
  if (!loaded.has(pool)) {
    await pool.addTaskModule(SABOTAGE_TASKS);
    loaded.add(pool);
  }
  await pool.runTask(kind === 'hang' ? 'test:hang' : 'test:crash-on-next-task', { ms });
}
