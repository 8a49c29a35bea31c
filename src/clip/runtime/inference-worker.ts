// The inference workers' module (served by util/worker): owns the ONNX Runtime sessions
// (whose run() blocks its thread) and the task handlers that use them, so the HTTP thread
// stays free. Task modules add handlers; `load-task-module` adds one to a running worker.
import ort from 'onnxruntime-node';
import type { Handlers } from '../../util/worker/protocol.ts';
import { cudaUnavailable, sessionProviders } from './execution-provider.ts';
import { LOAD_TASK_MODULE, type TaskHandler, type TaskModule, type TensorIn, type TensorOut, type WorkerContext, type WorkerInit } from './worker-protocol.ts';

/** One session run: the protocol's tensors in, float32 outputs back. */
export async function runSession(session: ort.InferenceSession, inputs: Record<string, TensorIn>): Promise<Record<string, TensorOut>> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const [name, t] of Object.entries(inputs)) feeds[name] = new ort.Tensor(t.type, t.data, t.dims);
  const results = await session.run(feeds);
  const outputs: Record<string, TensorOut> = {};
  for (const [name, t] of Object.entries(results)) outputs[name] = { data: t.data as Float32Array, dims: [...t.dims] };
  return outputs;
}

export async function setup(init: WorkerInit): Promise<Handlers> {
  const sessions: Record<string, ort.InferenceSession> = {};
  const context: WorkerContext = {
    async infer(model: string, inputs: Record<string, TensorIn>) {
      const session = sessions[model];
      if (!session) throw new Error(`no model named ${model} in this worker`);
      return runSession(session, inputs);
    },
  };

  const handlers: Handlers = {};
  const register = (tasks: Record<string, TaskHandler>) => {
    for (const [name, task] of Object.entries(tasks)) handlers[name] = (payload) => task(context, payload);
  };
  const loadTaskModule = async (url: string) => register(((await import(url)) as TaskModule).tasks);

  register({
    async infer(ctx, payload: { model: string; inputs: Record<string, TensorIn> }) {
      const outputs = await ctx.infer(payload.model, payload.inputs);
      return { result: outputs, transfer: Object.values(outputs).map((t) => t.data.buffer as ArrayBuffer) };
    },
  });
  handlers[LOAD_TASK_MODULE] = async ({ url }: { url: string }) => {
    await loadTaskModule(url);
    return { result: null };
  };

  const options: ort.InferenceSession.SessionOptions = {
    graphOptimizationLevel: 'all',
    intraOpNumThreads: init.intraOpThreads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    executionProviders: sessionProviders(init.executionProvider ?? 'cpu'),
    // The binding takes ORT's session config entries flat, as strings.
    extra: { 'session.intra_op.allow_spinning': init.intraOpSpinning ? '1' : '0' },
  };
  for (const [name, path] of Object.entries(init.models)) {
    try {
      sessions[name] = await ort.InferenceSession.create(path, options);
    } catch (err) {
      // The libraries were there (checked before start) but CUDA itself failed: driver, device, cuDNN.
      if (init.executionProvider === 'cuda') throw cudaUnavailable((err as Error).message);
      throw err;
    }
  }
  for (const url of init.taskModules) await loadTaskModule(url);
  return handlers;
}
