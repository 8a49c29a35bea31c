// Batch losses computed by worker threads. Training spends nearly all its time in the per-image
// forward and backward passes (~170 ms per image at ViT-B/16 sizes), which are independent, so
// a batch is cut into one contiguous run of images per worker. Each worker reads and prepares
// the samples it is given from the feature cache (its own SampleStore, a share of the memory
// budget) and returns one result per image; they are combined here in batch order with the
// same code as the single-threaded path (objective.ts meanOfSamples), so the trained
// parameters are bit-for-bit the same for any number of threads.
import { Worker } from 'node:worker_threads';
import type { LossSettings, LossTerms } from './loss.ts';
import { meanOfSamples, type SampleResult } from './objective.ts';
import type { ParameterBase } from './parameters.ts';
import type { LossEvaluator } from './trainer.ts';

export interface GradientWorkerData {
  files: string[];
  labels: (0 | 1)[];
  cutoff: number;
  budgetBytes: number;
  base: ParameterBase;
  loss: LossSettings;
  /** Positions in the train / validation set → index into `files`. */
  sets: { train: number[]; validation: number[] };
}

export interface GradientRequest {
  id: number;
  theta: Float64Array;
  set: 'train' | 'validation';
  positions: number[];
  withGrad: boolean;
}

type GradientReply = { id: number; results: SampleResult[] } | { id: number; error: string };

const ENTRY = new URL('./gradient-worker-entry.mjs', import.meta.url);

export class ParallelEvaluator implements LossEvaluator {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: SampleResult[]) => void; reject: (e: Error) => void }>();
  private failure: Error | undefined;

  private constructor(private readonly workers: Worker[]) {
    for (const worker of workers) {
      worker.on('message', (reply: GradientReply) => {
        const job = this.pending.get(reply.id);
        if (!job) return;
        this.pending.delete(reply.id);
        if ('error' in reply) job.reject(new Error(`training worker: ${reply.error}`));
        else job.resolve(reply.results);
      });
      const fail = (err: Error) => {
        this.failure ??= err;
        for (const job of this.pending.values()) job.reject(err);
        this.pending.clear();
      };
      worker.on('error', fail);
      worker.on('exit', (code) => {
        if (code !== 0) fail(new Error(`a training worker exited with code ${code}`));
      });
    }
  }

  /** `threads` workers over the same data; each keeps budgetBytes / threads of prepared samples. */
  static start(threads: number, data: GradientWorkerData): ParallelEvaluator {
    if (!Number.isInteger(threads) || threads < 1) throw new RangeError(`threads must be a whole number >= 1, got ${threads}`);
    const perWorker = { ...data, budgetBytes: Math.floor(data.budgetBytes / threads) };
    return new ParallelEvaluator(Array.from({ length: threads }, () => new Worker(ENTRY, { workerData: perWorker })));
  }

  get threads(): number {
    return this.workers.length;
  }

  private run(worker: Worker, request: Omit<GradientRequest, 'id'>): Promise<SampleResult[]> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ ...request, id });
    });
  }

  async loss(theta: Float64Array, set: 'train' | 'validation', positions: readonly number[], grad?: Float64Array): Promise<LossTerms> {
    // Contiguous runs, sizes differing by at most one; results come back in batch order.
    const runs: number[][] = [];
    const n = this.workers.length;
    let from = 0;
    for (let w = 0; w < n; w++) {
      const size = Math.floor(positions.length / n) + (w < positions.length % n ? 1 : 0);
      runs.push(positions.slice(from, from + size));
      from += size;
    }
    const parts = await Promise.all(
      runs.map((run, w) => (run.length ? this.run(this.workers[w], { theta, set, positions: run, withGrad: grad !== undefined }) : Promise.resolve([]))),
    );
    return meanOfSamples(parts.flat(), grad);
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
