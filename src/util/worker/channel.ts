// The calling side of one worker thread: spawns it through the shared bootstrap with a worker
// module (protocol.ts), tells when it is ready, and turns calls into promises. A handler's
// error rejects its call with WorkerCallError; a dead worker rejects every open call and is
// reported once to onFailure listeners. What to do then (replace it, give up) is the owner's
// choice: the inference pool replaces, the training evaluator stops.
import { Worker } from 'node:worker_threads';
import type { FromWorker, ToWorker, WorkerSpec } from './protocol.ts';

const BOOTSTRAP = new URL('./bootstrap.mjs', import.meta.url);

/** The worker never became ready: its setup threw ('init-error'), or it crashed or exited first. */
export class WorkerStartError extends Error {
  override readonly name = 'WorkerStartError';
  constructor(
    readonly kind: 'init-error' | 'error' | 'exit',
    message: string,
    readonly exitCode?: number,
  ) {
    super(message);
  }
}

/** The handler threw; the worker itself is fine. */
export class WorkerCallError extends Error {
  override readonly name = 'WorkerCallError';
  constructor(
    message: string,
    /** The stack as the worker saw it. */
    readonly remoteStack?: string,
  ) {
    super(message);
  }
}

/** The worker thread ended on its own. */
export class WorkerExitError extends Error {
  override readonly name = 'WorkerExitError';
  constructor(readonly exitCode: number) {
    super(`worker exited with code ${exitCode}`);
  }
}

interface Pending {
  resolve: (value: any) => void;
  reject: (err: Error) => void;
}

export class WorkerChannel {
  /** Resolves once setup() has run in the worker; rejects with WorkerStartError. */
  readonly ready: Promise<void>;
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private readonly failureListeners: Array<(err: Error) => void> = [];
  private nextId = 1;
  private started = false;
  private stopped = false;
  private failure: Error | undefined;

  /** `module`: file URL of a worker module; `data` is what its setup() gets (structured-cloned). */
  constructor(module: string | URL, data: unknown) {
    const spec: WorkerSpec = { module: String(module), data };
    this.worker = new Worker(BOOTSTRAP, { workerData: spec });
    let settle!: { resolve: () => void; reject: (err: Error) => void };
    this.ready = new Promise((resolve, reject) => (settle = { resolve, reject }));
    this.ready.catch(() => {}); // a caller that never awaits ready learns of it from call()
    this.worker.on('message', (msg: FromWorker) => {
      if (msg.type === 'ready') {
        this.started = true;
        settle.resolve();
      } else if (msg.type === 'init-error') {
        this.fail(new WorkerStartError('init-error', msg.message), settle.reject);
      } else {
        const call = this.pending.get(msg.id);
        if (!call) return;
        this.pending.delete(msg.id);
        if (msg.type === 'result') call.resolve(msg.result);
        else call.reject(new WorkerCallError(msg.message, msg.stack));
      }
    });
    this.worker.on('error', (err) => this.fail(this.started ? err : new WorkerStartError('error', err.message), settle.reject));
    this.worker.on('exit', (code) =>
      this.fail(this.started ? new WorkerExitError(code) : new WorkerStartError('exit', `exited during start-up (code ${code})`, code), settle.reject),
    );
  }

  /** Calls `method` in the worker; `transfer` lists payload buffers to move rather than copy. */
  call<R>(method: string, payload: unknown, transfer: ArrayBuffer[] = []): Promise<R> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.stopped) return Promise.reject(new Error('the worker was stopped'));
    const id = this.nextId++;
    return new Promise<R>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      const msg: ToWorker = { type: 'call', id, method, payload };
      this.worker.postMessage(msg, transfer);
    });
  }

  /** Called once, when the worker dies after it was ready (not after terminate()). */
  onFailure(listener: (err: Error) => void): void {
    this.failureListeners.push(listener);
  }

  /** Stops the thread; open calls are rejected and no failure is reported. */
  async terminate(): Promise<void> {
    if (!this.stopped) {
      this.stopped = true;
      this.rejectPending(new Error('the worker was stopped'));
    }
    await this.worker.terminate();
  }

  private fail(err: Error, rejectReady: (err: Error) => void): void {
    if (this.stopped || this.failure) return;
    this.failure = err;
    this.rejectPending(err);
    if (!this.started) {
      rejectReady(err);
      return;
    }
    for (const listener of this.failureListeners) listener(err);
  }

  private rejectPending(err: Error): void {
    const calls = [...this.pending.values()];
    this.pending.clear();
    for (const call of calls) call.reject(err);
  }
}
