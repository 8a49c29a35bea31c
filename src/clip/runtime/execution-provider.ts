// Where the ONNX Runtime sessions run (EXECUTION_PROVIDER). onnxruntime-node bundles the CPU
// provider only; its CUDA provider is a set of shared libraries its install script downloads
// (from NuGet) next to the binding, and this project turns that script off (package.json
// allowScripts). So `cuda` is checked before any work: a missing provider is one clear start-up
// error that says how to install it, not a stack trace after minutes of graph building.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { InferenceSession } from 'onnxruntime-node';
import { ExecutionProviderUnavailableError } from '../../errors.ts';

export type ExecutionProvider = 'cpu' | 'cuda';

/** What onnxruntime-node's install script puts beside the binding for CUDA 12 (install-metadata.js). */
const CUDA_LIBRARIES = ['libonnxruntime_providers_shared.so', 'libonnxruntime_providers_cuda.so'];

/** How to get the CUDA provider, for the error and the README (GPU). */
export const CUDA_INSTALL_HINT =
  'Install the CUDA 12 provider binaries with `ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install.js` ' +
  '(what `npm rebuild onnxruntime-node` runs where install scripts are allowed; it downloads Microsoft.ML.OnnxRuntime.Gpu.Linux from nuget.org), ' +
  'on a Linux x64 machine with an NVIDIA driver, CUDA 12 and cuDNN 9 (the nvidia/cuda:12.x-cudnn-runtime images, Dockerfile.cuda); ' +
  'or set EXECUTION_PROVIDER=cpu.';

/** The folder onnxruntime-node loads its binding (and provider libraries) from. */
export function ortBinaryFolder(): string {
  const entry = createRequire(import.meta.url).resolve('onnxruntime-node'); // …/onnxruntime-node/dist/index.js
  return join(dirname(entry), '..', 'bin', 'napi-v6', process.platform, process.arch);
}

/** Why `provider` cannot run here, or undefined when it can (as far as files tell; the driver is checked when a session opens). */
export function executionProviderProblem(provider: ExecutionProvider, folder = ortBinaryFolder()): string | undefined {
  if (provider === 'cpu') return undefined;
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    return `onnxruntime-node has a CUDA provider for Linux x64 only, this is ${process.platform}/${process.arch}`;
  }
  const missing = CUDA_LIBRARIES.filter((f) => !existsSync(join(folder, f)));
  return missing.length ? `${missing.join(' and ')} not found in ${folder}` : undefined;
}

/** Throws the start-up error when `provider` cannot run with the installed onnxruntime-node. */
export function assertExecutionProvider(provider: ExecutionProvider, folder?: string): void {
  const problem = executionProviderProblem(provider, folder);
  if (problem) throw cudaUnavailable(problem);
}

export function cudaUnavailable(detail: string): InstanceType<typeof ExecutionProviderUnavailableError> {
  return new ExecutionProviderUnavailableError(
    `EXECUTION_PROVIDER=cuda, but the installed onnxruntime-node cannot use the CUDA execution provider (${detail}). ${CUDA_INSTALL_HINT}`,
  );
}

/** Session providers: CUDA first with CPU behind it for the few operators CUDA lacks. */
export function sessionProviders(provider: ExecutionProvider): InferenceSession.SessionOptions['executionProviders'] {
  return provider === 'cuda' ? [{ name: 'cuda', deviceId: 0 }, 'cpu'] : ['cpu'];
}
