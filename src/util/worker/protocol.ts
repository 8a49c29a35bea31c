// Messages between a WorkerChannel (channel.ts, main thread) and serve() (serve.ts, in the
// worker), and the shape of a worker module: one setup(data) that returns the handlers.

/** The bootstrap's workerData: which module to serve, and the data its setup() gets. */
export interface WorkerSpec {
  /** File URL of a module exporting setup (WorkerModule). */
  module: string;
  data: unknown;
}

export interface Reply<R = unknown> {
  result: R;
  /** Buffers moved (not copied) back to the calling thread. */
  transfer?: ArrayBuffer[];
}

export type Handler = (payload: any) => Promise<Reply> | Reply;
export type Handlers = Record<string, Handler>;

/** A worker module: setup() runs once in the worker (open files, sessions…) and names its handlers. */
export interface WorkerModule<D = any> {
  setup(data: D): Promise<Handlers> | Handlers;
}

export type ToWorker = { type: 'call'; id: number; method: string; payload: unknown };

export type FromWorker =
  | { type: 'ready' }
  | { type: 'init-error'; message: string }
  | { type: 'result'; id: number; result: unknown }
  | { type: 'error'; id: number; message: string; stack?: string };
