// A pool of inference workers with a bounded queue. The main thread only sends tensors and
// receives results; a crashed or hung worker is replaced and its job fails on its own.
import { Worker } from 'node:worker_threads';
import { EventEmitter } from 'node:events';
import { JobTimeoutError, QueueFullError, WorkerFailedError } from '../../errors.ts';
import type { FromWorker, TensorIn, TensorOut, ToWorker, WorkerInit } from './worker-protocol.ts';

export type { TensorIn, TensorOut };

export interface PoolOptions {
  /** Model name → .onnx path; every worker opens all of them. */
  models: Record<string, string>;
  /** File URLs of task modules loaded in every worker (see worker-protocol.ts). */
  taskModules?: string[];
  size: number;
  intraOpThreads: number;
  /** Jobs waiting beyond the ones running; more are refused with QueueFullError. */
  maxQueue: number;
  /** A job running longer than this is treated as hung: its worker is replaced. 0 = none. */
  jobTimeoutMs: number;
}


interface Job {
  id: number;
  task: string;
  payload: unknown;
  transfer: ArrayBuffer[];
  resolve: (out: any) => void;
  reject: (err: Error) => void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

interface Slot {
  worker: Worker;
  ready: boolean;
  job?: Job;
  timer?: NodeJS.Timeout;
}

const WORKER_URL = new URL('./worker-entry.mjs', import.meta.url);

export class WorkerPool extends EventEmitter {
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private nextId = 1;
  private closed = false;
  restarts = 0;

  private constructor(private readonly opts: PoolOptions) {
    super();
  }

  /** Starts the workers and resolves once every one has opened its sessions. */
  static async start(opts: PoolOptions): Promise<WorkerPool> {
    const pool = new WorkerPool(opts);
    await Promise.all(Array.from({ length: opts.size }, () => pool.spawn()));
    return pool;
  }

  get queued(): number {
    return this.queue.length;
  }

  get running(): number {
    return this.slots.filter((s) => s.job).length;
  }

  get size(): number {
    return this.opts.size;
  }

  /** Runs one session in a worker. Input buffers are moved to the worker (the caller loses them). */
  infer(model: string, inputs: Record<string, TensorIn>, signal?: AbortSignal): Promise<Record<string, TensorOut>> {
    const owned: Record<string, TensorIn> = {};
    for (const [name, t] of Object.entries(inputs)) owned[name] = { ...t, data: ownBuffer(t.data) };
    return this.runTask('infer', { model, inputs: owned }, Object.values(owned).map((t) => t.data.buffer as ArrayBuffer), signal);
  }

  /** Runs a registered task in a worker; `transfer` lists payload buffers to move rather than copy. */
  runTask<R>(task: string, payload: unknown, transfer: ArrayBuffer[] = [], signal?: AbortSignal): Promise<R> {
    if (this.closed) return Promise.reject(new WorkerFailedError('the inference pool is shut down'));
    const idle = this.slots.find((s) => s.ready && !s.job);
    if (!idle && this.queue.length >= this.opts.maxQueue) return Promise.reject(new QueueFullError(`The service is busy (${this.queue.length} detections waiting); retry shortly.`));
    return new Promise<R>((resolve, reject) => {
      const job: Job = { id: this.nextId++, task, payload, transfer, resolve, reject, signal };
      if (idle) this.dispatch(idle, job);
      else this.queue.push(job);
      if (signal && !idle) {
        // Only a queued job can be dropped; the listener goes when the job leaves the queue,
        // so long-lived signals do not keep finished jobs alive.
        job.onAbort = () => this.dropQueued(job);
        signal.addEventListener('abort', job.onAbort, { once: true });
      }
    });
  }

  /** A job still waiting when its caller gives up leaves the queue without running. */
  private dropQueued(job: Job): void {
    const i = this.queue.indexOf(job);
    if (i >= 0) {
      this.queue.splice(i, 1);
      job.reject(new JobTimeoutError('The detection did not finish in time.'));
    }
  }

  /**
   * Test hook. 'crash' makes a worker die inside its next job (as a native fault would);
   * 'hang' makes it block its thread, as a stuck native call would.
   */
  sabotage(kind: 'hang' | 'crash', ms = 60_000): void {
    const msg: ToWorker = kind === 'hang' ? { type: 'hang-for-test', ms } : { type: 'crash-on-next-task' };
    this.slots[0].worker.postMessage(msg);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.queue.splice(0)) job.reject(new WorkerFailedError('the inference pool is shutting down'));
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
    this.slots.length = 0;
  }

  private spawn(): Promise<void> {
    return new Promise((resolve, reject) => {
      const init: WorkerInit = {
        models: this.opts.models,
        intraOpThreads: this.opts.intraOpThreads,
        taskModules: this.opts.taskModules ?? [],
      };
      const worker = new Worker(WORKER_URL, { workerData: init });
      const slot: Slot = { worker, ready: false };
      this.slots.push(slot);
      worker.on('message', (msg: FromWorker) => {
        if (msg.type === 'ready') {
          slot.ready = true;
          resolve();
          this.pump(slot);
        } else if (msg.type === 'init-error') {
          reject(new WorkerFailedError(`inference worker could not open the models: ${msg.message}`));
        } else if (msg.type === 'result' || msg.type === 'error') {
          const job = slot.job;
          if (!job || job.id !== msg.id) return;
          this.finish(slot);
          if (msg.type === 'result') job.resolve(msg.result);
          else job.reject(new WorkerFailedError(`The inference failed: ${msg.message}`));
          this.pump(slot);
        }
      });
      worker.on('error', (err) => this.replace(slot, `inference worker crashed: ${err.message}`));
      worker.on('exit', (code) => {
        if (!slot.ready) reject(new WorkerFailedError(`inference worker exited during start-up (code ${code})`));
        else this.replace(slot, `inference worker exited (code ${code})`);
      });
    });
  }

  private dispatch(slot: Slot, job: Job): void {
    if (job.onAbort) job.signal?.removeEventListener('abort', job.onAbort);
    slot.job = job;
    if (this.opts.jobTimeoutMs > 0) {
      slot.timer = setTimeout(() => this.replace(slot, '', new JobTimeoutError(`The detection did not finish in time (the inference worker was stuck for ${this.opts.jobTimeoutMs} ms and has been replaced).`)), this.opts.jobTimeoutMs);
    }
    const msg: ToWorker = { type: 'task', id: job.id, task: job.task, payload: job.payload };
    slot.worker.postMessage(msg, job.transfer);
  }

  private finish(slot: Slot): void {
    if (slot.timer) clearTimeout(slot.timer);
    slot.timer = undefined;
    slot.job = undefined;
  }

  private pump(slot: Slot): void {
    if (slot.job || !slot.ready) return;
    const next = this.queue.shift();
    if (next) this.dispatch(slot, next);
  }

  /** Fails the slot's job, removes the worker and starts a fresh one in its place. */
  private replace(slot: Slot, reason: string, error?: Error): void {
    const i = this.slots.indexOf(slot);
    if (i < 0) return;
    this.slots.splice(i, 1);
    const job = slot.job;
    this.finish(slot);
    slot.worker.removeAllListeners();
    slot.worker.on('error', () => {});
    void slot.worker.terminate();
    job?.reject(error ?? new WorkerFailedError(`The inference worker failed (${reason}); it has been restarted. Retry the request.`));
    if (this.closed) return;
    this.restarts += 1;
    this.emit('restart', reason || error?.message);
    this.spawn().catch((err) => this.emit('spawn-error', err));
  }
}

/** A typed array that is a view into a larger buffer is copied, so moving it moves nothing else. */
function ownBuffer<T extends Float32Array | BigInt64Array>(a: T): T {
  return a.byteOffset === 0 && a.byteLength === a.buffer.byteLength ? a : (a.slice() as T);
}
