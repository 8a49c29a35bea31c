// A training worker thread's module (served by util/worker): holds its own SampleStore over the
// feature cache and answers "loss (and gradient) of these images at θ" with one result per
// image (parallel-evaluator.ts adds them up in batch order, so the split never changes the
// numbers).
import type { Handlers } from '../util/worker/protocol.ts';
import { sampleLoss, type SampleResult } from './objective.ts';
import { ParameterSpace } from './parameters.ts';
import { SampleStore } from './sample-store.ts';
import type { GradientRequest, GradientWorkerData } from './parallel-evaluator.ts';

export function setup(data: GradientWorkerData): Handlers {
  const store = new SampleStore(data.files, data.labels, data.cutoff, data.budgetBytes);
  const space = new ParameterSpace(data.base);
  return {
    loss(req: GradientRequest) {
      const text = space.branchText(req.theta);
      const settings = space.scoring(req.theta);
      const indices = data.sets[req.set];
      const results: SampleResult[] = req.positions.map((p) => sampleLoss(space, text, settings, store.get(indices[p]), data.loss, req.withGrad));
      const transfer = results.flatMap((r) => (r.grad ? [r.grad.buffer as ArrayBuffer] : []));
      return { result: results, transfer };
    },
  };
}
