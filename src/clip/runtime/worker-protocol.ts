// Messages between the inference pool and its workers, and the shape of task modules that
// run inside a worker next to the ONNX Runtime sessions.
import type { InferenceSession } from 'onnxruntime-node';

export interface TensorIn {
  type: 'float32' | 'int64';
  data: Float32Array | BigInt64Array;
  dims: number[];
}

export interface TensorOut {
  data: Float32Array;
  dims: number[];
}

export interface WorkerInit {
  models: Record<string, string>;
  intraOpThreads: number;
  /** File URLs of modules whose `tasks` export is registered in the worker. */
  taskModules: string[];
}

export interface WorkerContext {
  /** Runs one session on the given inputs (in this worker's thread). */
  infer(model: string, inputs: Record<string, TensorIn>): Promise<Record<string, TensorOut>>;
}

export interface TaskResult<R = unknown> {
  result: R;
  /** Buffers moved (not copied) back to the main thread. */
  transfer?: ArrayBuffer[];
}

export type TaskHandler = (ctx: WorkerContext, payload: any) => Promise<TaskResult>;

/** A task module exports `tasks`: name → handler. */
export type TaskModule = { tasks: Record<string, TaskHandler> };

export type ToWorker =
  | { type: 'task'; id: number; task: string; payload: unknown }
  | { type: 'hang-for-test'; ms: number }
  | { type: 'crash-on-next-task' };

export type FromWorker =
  | { type: 'ready' }
  | { type: 'init-error'; message: string }
  | { type: 'result'; id: number; result: unknown }
  | { type: 'error'; id: number; message: string };

export type { InferenceSession };
