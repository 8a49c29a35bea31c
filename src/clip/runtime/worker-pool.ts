// A pool of inference workers with a bounded queue. The main thread only sends tensors and
// receives results; a crashed or hung worker is replaced and its job fails on its own. The
// threads and their messages are util/worker's; the workers run inference-worker.ts.
import { EventEmitter } from 'node:events';
import { JobTimeoutError, QueueFullError, WorkerFailedError } from '../../errors.ts';
import { WorkerCallError, WorkerChannel, WorkerExitError, type WorkerStartError } from '../../util/worker/channel.ts';
import { LOAD_TASK_MODULE, type TensorIn, type TensorOut, type WorkerInit } from './worker-protocol.ts';

export type { TensorIn, TensorOut };

export interface PoolOptions {
  /** Model name → .onnx path; every worker opens all of them. */
  models: Record<string, string>;
  /** File URLs of task modules loaded in every worker (see worker-protocol.ts). */
  taskModules?: string[];
  size: number;
  intraOpThreads: number;
  /** Where the sessions run (default cpu). */
  executionProvider?: 'cpu' | 'cuda';
  intraOpSpinning?: boolean;
  /** Jobs waiting beyond the ones running; more are refused with QueueFullError. */
  maxQueue: number;
  /** A job running longer than this is treated as hung: its worker is replaced. 0 = none. */
  jobTimeoutMs: number;
}

interface Job {
  task: string;
  payload: unknown;
  transfer: ArrayBuffer[];
  resolve: (out: any) => void;
  reject: (err: Error) => void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

interface Slot {
  channel: WorkerChannel;
  ready: boolean;
  job?: Job;
  timer?: NodeJS.Timeout;
}

const WORKER_MODULE = new URL('./inference-worker.ts', import.meta.url);

export class WorkerPool extends EventEmitter {
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private closed = false;
  restarts = 0;

  private readonly opts: PoolOptions;

  private constructor(opts: PoolOptions) {
    super();
    this.opts = { ...opts, taskModules: [...(opts.taskModules ?? [])] };
  }

  /** Starts the workers and resolves once every one has opened its sessions. */
  static async start(opts: PoolOptions): Promise<WorkerPool> {
    const pool = new WorkerPool(opts);
    try {
      await Promise.all(Array.from({ length: opts.size }, () => pool.spawn()));
    } catch (err) {
      await pool.close(); // the workers that did start
      throw err;
    }
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

  /** Jobs it holds at most: one running per worker and `maxQueue` waiting. */
  get capacity(): number {
    return this.opts.size + this.opts.maxQueue;
  }

  /** Whether a job submitted now would be refused: no idle worker and the queue full. */
  get full(): boolean {
    return !this.slots.some((s) => s.ready && !s.job) && this.queue.length >= this.opts.maxQueue;
  }

  /** Runs one session in a worker. Input buffers are moved to the worker (the caller loses them). */
  infer(model: string, inputs: Record<string, TensorIn>, signal?: AbortSignal): Promise<Record<string, TensorOut>> {
    const owned: Record<string, TensorIn> = {};
    for (const [name, t] of Object.entries(inputs)) owned[name] = { ...t, data: ownBuffer(t.data) };
    return this.runTask('infer', { model, inputs: owned }, Object.values(owned).map((t) => t.data.buffer as ArrayBuffer), signal);
  }

  /**
   * Runs a registered task in a worker; `transfer` lists payload buffers to move rather than copy.
   * An `urgent` job finishes work already admitted (e.g. rendering a scored detection's maps):
   * it waits ahead of the queue and is never refused for a full queue.
   */
  runTask<R>(task: string, payload: unknown, transfer: ArrayBuffer[] = [], signal?: AbortSignal, options: { urgent?: boolean } = {}): Promise<R> {
    if (this.closed) return Promise.reject(new WorkerFailedError('the inference pool is shut down'));
    const idle = this.slots.find((s) => s.ready && !s.job);
    if (!idle && !options.urgent && this.queue.length >= this.opts.maxQueue) {
      return Promise.reject(new QueueFullError(`The service is busy (${this.queue.length} detections waiting); retry shortly.`));
    }
    return new Promise<R>((resolve, reject) => {
      const job: Job = { task, payload, transfer, resolve, reject, signal };
      if (idle) this.dispatch(idle, job);
      else if (options.urgent) this.queue.unshift(job);
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
   * Loads one more task module (a file URL exporting `tasks`) into every worker, and into the
   * ones started later to replace them.
   */
  async addTaskModule(url: string): Promise<void> {
    const slots = [...this.slots]; // started with the old list
    this.opts.taskModules!.push(url);
    await Promise.all(
      slots.map(async (slot) => {
        await slot.channel.ready;
        await slot.channel.call(LOAD_TASK_MODULE, { url });
      }),
    );
  }

  async close(): Promise<void> {
    this.closed = true;
    const slots = this.slots.splice(0);
    const jobs = [...this.queue.splice(0), ...slots.flatMap((s) => (s.job ? [s.job] : []))];
    for (const slot of slots) this.finish(slot);
    for (const job of jobs) job.reject(new WorkerFailedError('the inference pool is shutting down'));
    await Promise.all(slots.map((s) => s.channel.terminate()));
  }

  private async spawn(): Promise<void> {
    const init: WorkerInit = {
      models: this.opts.models,
      intraOpThreads: this.opts.intraOpThreads,
      executionProvider: this.opts.executionProvider,
      intraOpSpinning: this.opts.intraOpSpinning,
      taskModules: [...this.opts.taskModules!],
    };
    const slot: Slot = { channel: new WorkerChannel(WORKER_MODULE, init), ready: false };
    this.slots.push(slot);
    slot.channel.onFailure((err) =>
      this.replace(slot, err instanceof WorkerExitError ? `inference worker exited (code ${err.exitCode})` : `inference worker crashed: ${err.message}`),
    );
    try {
      await slot.channel.ready;
    } catch (err) {
      const e = err as WorkerStartError;
      const i = this.slots.indexOf(slot);
      if (i >= 0) this.slots.splice(i, 1);
      void slot.channel.terminate();
      if (e.kind === 'init-error') throw new WorkerFailedError(`inference worker could not open the models: ${e.message}`);
      if (e.kind === 'exit') throw new WorkerFailedError(`inference worker exited during start-up (code ${e.exitCode})`);
      throw new WorkerFailedError(`inference worker crashed during start-up: ${e.message}`);
    }
    slot.ready = true;
    this.pump(slot);
  }

  private dispatch(slot: Slot, job: Job): void {
    if (job.onAbort) job.signal?.removeEventListener('abort', job.onAbort);
    slot.job = job;
    if (this.opts.jobTimeoutMs > 0) {
      slot.timer = setTimeout(() => this.replace(slot, '', new JobTimeoutError(`The detection did not finish in time (the inference worker was stuck for ${this.opts.jobTimeoutMs} ms and has been replaced).`)), this.opts.jobTimeoutMs);
    }
    slot.channel.call(job.task, job.payload, job.transfer).then(
      (result) => {
        if (slot.job !== job) return; // timed out or replaced meanwhile
        this.finish(slot);
        job.resolve(result);
        this.pump(slot);
      },
      (err: Error) => {
        // A dead worker is handled by replace() (onFailure); here only the task's own failure.
        if (slot.job !== job || !(err instanceof WorkerCallError)) return;
        this.finish(slot);
        job.reject(new WorkerFailedError(`The inference failed: ${err.message}`));
        this.pump(slot);
      },
    );
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
    void slot.channel.terminate();
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
