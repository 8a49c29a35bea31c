// Batch losses computed by worker threads. Training spends nearly all its time in the per-image
// forward and backward passes (~170 ms per image at ViT-B/16 sizes), which are independent, so
// a batch is cut into one contiguous run of images per worker. Each worker reads and prepares
// the samples it is given from the feature cache (its own SampleStore, a share of the memory
// budget) and returns one result per image; they are combined here in batch order with the
// same code as the single-threaded path (objective.ts meanOfSamples), so the trained
// parameters are bit-for-bit the same for any number of threads. The threads are util/worker's;
// each runs gradient-worker.ts.
import { WorkerCallError, WorkerChannel, WorkerExitError } from '../util/worker/channel.ts';
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
  theta: Float64Array;
  set: 'train' | 'validation';
  positions: number[];
  withGrad: boolean;
}

const WORKER_MODULE = new URL('./gradient-worker.ts', import.meta.url);

export class ParallelEvaluator implements LossEvaluator {
  private failure: Error | undefined;

  private constructor(private readonly workers: WorkerChannel[]) {
    // A dead worker fails the whole evaluator: its share of every later batch is missing.
    for (const worker of workers) {
      worker.onFailure((err) => (this.failure ??= err instanceof WorkerExitError ? new Error(`a training worker exited with code ${err.exitCode}`) : err));
    }
  }

  /** `threads` workers over the same data; each keeps budgetBytes / threads of prepared samples. */
  static start(threads: number, data: GradientWorkerData): ParallelEvaluator {
    if (!Number.isInteger(threads) || threads < 1) throw new RangeError(`threads must be a whole number >= 1, got ${threads}`);
    const perWorker = { ...data, budgetBytes: Math.floor(data.budgetBytes / threads) };
    return new ParallelEvaluator(Array.from({ length: threads }, () => new WorkerChannel(WORKER_MODULE, perWorker)));
  }

  get threads(): number {
    return this.workers.length;
  }

  private async run(worker: WorkerChannel, request: GradientRequest): Promise<SampleResult[]> {
    if (this.failure) throw this.failure;
    try {
      return await worker.call<SampleResult[]>('loss', request);
    } catch (err) {
      if (err instanceof WorkerCallError) throw new Error(`training worker: ${err.message}\n${err.remoteStack ?? ''}`);
      throw this.failure ?? err;
    }
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
