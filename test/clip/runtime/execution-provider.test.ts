// EXECUTION_PROVIDER: the CPU path (cpu named explicitly) with real sessions, and the CUDA
// error path on a machine whose onnxruntime-node has no CUDA provider (this one: its install
// script, which downloads the provider, is turned off): a clear error before any graph is
// built, from the runtime, from a worker that tries anyway, and from the server process.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateModel } from '../../../src/dev/random-model.ts';
import { ClipRuntime, type ClipRuntimeOptions } from '../../../src/clip/runtime/runtime.ts';
import { WorkerPool } from '../../../src/clip/runtime/worker-pool.ts';
import { executionProviderProblem, ortBinaryFolder } from '../../../src/clip/runtime/execution-provider.ts';
import { ExecutionProviderUnavailableError, WorkerFailedError } from '../../../src/errors.ts';
import { loadSettings } from '../../../src/settings.ts';

const ROOT = join(import.meta.dirname, '..', '..', '..');
let dir: string;
let model: string;
const S = 64;
const base = (cacheDir: string): ClipRuntimeOptions => ({
  model,
  cacheDir,
  offline: true,
  imageSize: S,
  denseLayers: [2, 4],
  denseStart: 3,
  denseAttention: 'vv',
  workers: 1,
  intraOpThreads: 1,
  maxQueue: 4,
  jobTimeoutMs: 0,
});

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ep-'));
  model = join(dir, 'tiny');
  generateModel({ arch: 'tiny', seed: 1, out: model });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('EXECUTION_PROVIDER setting', () => {
  it('defaults to cpu, accepts cuda, refuses anything else naming what it allows', () => {
    expect(loadSettings({}).executionProvider).toBe('cpu');
    expect(loadSettings({ EXECUTION_PROVIDER: 'cuda' }).executionProvider).toBe('cuda');
    expect(() => loadSettings({ EXECUTION_PROVIDER: 'gpu' })).toThrow(/EXECUTION_PROVIDER="gpu": allowed values are cpu, cuda/);
  });
});

describe('provider check', () => {
  it('cpu always runs; cuda needs the provider libraries beside the binding', () => {
    expect(executionProviderProblem('cpu')).toBeUndefined();
    const empty = join(dir, 'ort-empty');
    mkdirSync(empty);
    expect(executionProviderProblem('cuda', empty)).toMatch(/libonnxruntime_providers_shared\.so and libonnxruntime_providers_cuda\.so not found/);
    if (process.platform === 'linux' && process.arch === 'x64') {
      const full = join(dir, 'ort-cuda');
      mkdirSync(full);
      for (const f of ['libonnxruntime_providers_shared.so', 'libonnxruntime_providers_cuda.so']) writeFileSync(join(full, f), '');
      expect(executionProviderProblem('cuda', full)).toBeUndefined();
    }
    expect(existsSync(join(ortBinaryFolder(), 'onnxruntime_binding.node'))).toBe(true); // the folder checked is the real one
  });
});

describe('cpu, named explicitly', () => {
  it('opens real sessions and runs both towers', async () => {
    const runtime = await ClipRuntime.load({ ...base(join(dir, 'cache-cpu')), executionProvider: 'cpu' });
    try {
      const text = await runtime.encodeTexts(['a photo of a flawless part']);
      expect(text.length).toBe(runtime.dim);
      const { imageEmbeds } = await runtime.encodeImages(new Float32Array(3 * S * S).fill(0.2), 1);
      expect(imageEmbeds.length).toBe(runtime.dim);
      expect([...imageEmbeds].every(Number.isFinite)).toBe(true);
      expect(imageEmbeds.some((v) => v !== 0)).toBe(true);
    } finally {
      await runtime.close();
    }
  });
});

const cudaProblem = executionProviderProblem('cuda');
if (!cudaProblem) console.warn('CUDA error-path tests skipped: this onnxruntime-node has the CUDA provider libraries');
describe.skipIf(!cudaProblem)('cuda where onnxruntime-node has no CUDA provider', () => {
  it('the runtime refuses before resolving or building anything, saying what to install', async () => {
    const cache = join(dir, 'cache-cuda');
    const err = await ClipRuntime.load({ ...base(cache), executionProvider: 'cuda' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExecutionProviderUnavailableError);
    const message = (err as Error).message;
    expect(message).toMatch(/^EXECUTION_PROVIDER=cuda, but the installed onnxruntime-node cannot use the CUDA execution provider/);
    expect(message).toContain('libonnxruntime_providers_cuda.so');
    expect(message).toContain('ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install.js');
    expect(message).toContain('EXECUTION_PROVIDER=cpu');
    expect(existsSync(cache) ? readdirSync(cache) : []).toEqual([]); // nothing built
  });

  it('a worker asked for cuda anyway fails to start with the same guidance and ONNX Runtime’s own reason', async () => {
    const cpu = await ClipRuntime.load(base(join(dir, 'cache-cpu')));
    const models = { text: cpu.graphs.textPath, image: cpu.graphs.imagePath };
    await cpu.close();
    const err = await WorkerPool.start({ models, size: 1, intraOpThreads: 1, maxQueue: 1, jobTimeoutMs: 0, executionProvider: 'cuda' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkerFailedError);
    expect((err as Error).message).toMatch(/could not open the models: EXECUTION_PROVIDER=cuda, but .*Failed to load/s);
    expect((err as Error).message).toContain('ONNXRUNTIME_NODE_INSTALL=cuda12');
  });

  it('the server exits 1 at start-up with the message, and /readyz never answers ready', async () => {
    // Start-up fails fast: the decision is a non-zero exit (an orchestrator restarts or reports
    // it), not a process that stays up unready.
    const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/demo.ts'], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: dir,
        DEMO_MODEL_DIR: model,
        MODEL_CACHE_DIR: join(dir, 'cache-server'),
        DATA_DIR: join(dir, 'data-server'),
        HOST: '127.0.0.1',
        PORT: '0',
        EXECUTION_PROVIDER: 'cuda',
      },
    });
    let stdout = '';
    let stderr = '';
    const readyAnswers: number[] = [];
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString('utf8');
      const m = /"msg":"Server listening at (http:\/\/127\.0\.0\.1:\d+)"/.exec(stdout);
      if (m) void fetch(`${m[1]}/readyz`).then((r) => readyAnswers.push(r.status), () => {});
    });
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    clearTimeout(timer);
    expect(code).toBe(1);
    expect(stderr).toMatch(/start-up failed: EXECUTION_PROVIDER=cuda, but the installed onnxruntime-node cannot use the CUDA execution provider/);
    expect(stderr).toContain('ONNXRUNTIME_NODE_INSTALL=cuda12');
    expect(stdout).not.toContain('model loaded; ready');
    expect(readyAnswers.every((s) => s !== 200)).toBe(true);
  }, 90_000);
});
