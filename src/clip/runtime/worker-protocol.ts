// What the inference pool sends its workers (inference-worker.ts), and the shape of task
// modules that run inside a worker next to the ONNX Runtime sessions. The messages
// themselves are util/worker's.
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

/** The handler that registers one more task module ({ url }) in a running worker. */
export const LOAD_TASK_MODULE = 'load-task-module';

export interface WorkerInit {
  models: Record<string, string>;
  intraOpThreads: number;
  /** Where the sessions run (checked on the main thread before the workers start). */
  executionProvider?: 'cpu' | 'cuda';
  /** ORT's session.intra_op.allow_spinning. */
  intraOpSpinning?: boolean;
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

export type { InferenceSession };
