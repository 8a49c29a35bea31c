// Inside a worker thread: loads the worker module, runs its setup() with the spawn's data,
// says ready (or why not, then exits), and answers calls by name, one reply per call, in
// whatever order they finish.
import { parentPort, workerData } from 'node:worker_threads';
import type { FromWorker, Handlers, ToWorker, WorkerModule, WorkerSpec } from './protocol.ts';

export async function serve(): Promise<void> {
  const port = parentPort;
  if (!port) throw new Error('serve() runs in a worker thread');
  const post = (msg: FromWorker, transfer: ArrayBuffer[] = []) => port.postMessage(msg, transfer);
  const spec = workerData as WorkerSpec;
  let handlers: Handlers;
  try {
    const mod = (await import(spec.module)) as WorkerModule;
    handlers = await mod.setup(spec.data);
  } catch (err) {
    post({ type: 'init-error', message: err instanceof Error ? err.message : String(err) });
    process.exit(1);
  }
  // Calls posted before now waited in the port: it starts delivering with this listener.
  port.on('message', async (msg: ToWorker) => {
    try {
      const handler = Object.hasOwn(handlers, msg.method) ? handlers[msg.method] : undefined;
      if (!handler) throw new Error(`unknown worker task ${msg.method}`);
      const { result, transfer } = await handler(msg.payload);
      post({ type: 'result', id: msg.id, result }, transfer);
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      post({ type: 'error', id: msg.id, message: e.message, stack: e.stack });
    }
  });
  post({ type: 'ready' });
}
