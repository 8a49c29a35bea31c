// The dense-frequency scoring graph in an ONNX Runtime session of this thread, with `infer` as
// the inference worker gives it to the scoring task: for the benchmark and the graph's tests,
// which run the graph without a worker pool.
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { buildScoringGraph, type ScoringInfer } from '../methods/dense-frequency/scoring-graph.ts';
import { runSession } from '../clip/runtime/inference-worker.ts';

/** A freshly built scoring graph in its own session; close() releases it and removes the file. */
export async function scoringSession(threads = availableParallelism()): Promise<{ infer: ScoringInfer; close: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'scoring-graph-'));
  const file = join(dir, 'scoring.onnx');
  buildScoringGraph(file);
  const session = await ort.InferenceSession.create(file, { graphOptimizationLevel: 'all', intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential' });
  return {
    infer: (inputs) => runSession(session, inputs),
    close: async () => {
      await session.release();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
