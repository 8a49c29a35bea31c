// A training worker thread: holds its own SampleStore over the feature cache and answers
// "loss (and gradient) of these images at θ" with one result per image (parallel-evaluator.ts
// adds them up in batch order, so the split never changes the numbers).
import { parentPort, workerData } from 'node:worker_threads';
import { sampleLoss, type SampleResult } from './objective.ts';
import { ParameterSpace } from './parameters.ts';
import { SampleStore } from './sample-store.ts';
import type { GradientRequest, GradientWorkerData } from './parallel-evaluator.ts';

const data = workerData as GradientWorkerData;
const store = new SampleStore(data.files, data.labels, data.cutoff, data.budgetBytes);
const space = new ParameterSpace(data.base);

parentPort!.on('message', (req: GradientRequest) => {
  try {
    const text = space.branchText(req.theta);
    const settings = space.scoring(req.theta);
    const indices = data.sets[req.set];
    const results: SampleResult[] = req.positions.map((p) => sampleLoss(space, text, settings, store.get(indices[p]), data.loss, req.withGrad));
    const transfer = results.flatMap((r) => (r.grad ? [r.grad.buffer as ArrayBuffer] : []));
    parentPort!.postMessage({ id: req.id, results }, transfer);
  } catch (err) {
    parentPort!.postMessage({ id: req.id, error: err instanceof Error ? `${err.message}\n${err.stack ?? ''}` : String(err) });
  }
});
