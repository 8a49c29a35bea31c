// One MSM worker thread for bench/musc.bench.ts: per message, a layer (its normed features on a
// SharedArrayBuffer) and an owner range; writes its pairs into the shared result buffer.
import { parentPort } from 'node:worker_threads';
import { MutualScorer, type MsmLayer } from '../src/methods/musc/msm.ts';

const scorer = new MutualScorer();
parentPort?.on('message', (m: { layer: MsmLayer; from: number; to: number; out: Float32Array }) => {
  scorer.setLayer(m.layer);
  scorer.minDistances(m.from, m.to, m.out);
  parentPort?.postMessage('done');
});
parentPort?.postMessage('ready');
