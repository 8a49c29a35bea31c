// Runs inside a worker thread: owns the ONNX Runtime sessions (whose run() blocks its
// thread) and the task handlers that use them, so the HTTP thread stays free.
import { parentPort, workerData } from 'node:worker_threads';
import ort from 'onnxruntime-node';
import type { FromWorker, TaskHandler, TaskModule, TensorIn, TensorOut, ToWorker, WorkerContext, WorkerInit } from './worker-protocol.ts';

const init = workerData as WorkerInit;
const port = parentPort!;
const post = (msg: FromWorker, transfer: ArrayBuffer[] = []) => port.postMessage(msg, transfer);

const sessions: Record<string, ort.InferenceSession> = {};

const context: WorkerContext = {
  async infer(model: string, inputs: Record<string, TensorIn>) {
    const session = sessions[model];
    if (!session) throw new Error(`no model named ${model} in this worker`);
    const feeds: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(inputs)) feeds[name] = new ort.Tensor(t.type, t.data, t.dims);
    const results = await session.run(feeds);
    const outputs: Record<string, TensorOut> = {};
    for (const [name, t] of Object.entries(results)) outputs[name] = { data: t.data as Float32Array, dims: [...t.dims] };
    return outputs;
  },
};

const tasks: Record<string, TaskHandler> = {
  async infer(ctx, payload: { model: string; inputs: Record<string, TensorIn> }) {
    const outputs = await ctx.infer(payload.model, payload.inputs);
    return { result: outputs, transfer: Object.values(outputs).map((t) => t.data.buffer as ArrayBuffer) };
  },
};

try {
  const options: ort.InferenceSession.SessionOptions = {
    graphOptimizationLevel: 'all',
    intraOpNumThreads: init.intraOpThreads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
  };
  for (const [name, path] of Object.entries(init.models)) sessions[name] = await ort.InferenceSession.create(path, options);
  for (const url of init.taskModules) {
    const mod = (await import(url)) as TaskModule;
    Object.assign(tasks, mod.tasks);
  }
  post({ type: 'ready' });
} catch (err) {
  post({ type: 'init-error', message: err instanceof Error ? err.message : String(err) });
  process.exit(1);
}

let crashOnNextTask = false;

port.on('message', async (msg: ToWorker) => {
  if (msg.type === 'hang-for-test') {
    // Simulates a stuck native call: blocks this thread without returning.
    const end = Date.now() + msg.ms;
    while (Date.now() < end);
    return;
  }
  if (msg.type === 'crash-on-next-task') {
    crashOnNextTask = true;
    return;
  }
  if (crashOnNextTask) process.exit(3); // test hook: dies mid-request
  const handler = tasks[msg.task];
  try {
    if (!handler) throw new Error(`unknown worker task ${msg.task}`);
    const { result, transfer } = await handler(context, msg.payload);
    post({ type: 'result', id: msg.id, result }, transfer);
  } catch (err) {
    post({ type: 'error', id: msg.id, message: err instanceof Error ? err.message : String(err) });
  }
});
