// The runtime options the service's settings give: the one place settings reach the CLIP
// runtime (which never reads settings itself). Callers add or override the rest.
import type { Settings } from '../settings.ts';
import type { ClipRuntimeOptions } from '../clip/runtime/runtime.ts';

export function runtimeOptionsFromSettings(settings: Settings, log?: (message: string) => void): ClipRuntimeOptions {
  return {
    model: settings.model,
    cacheDir: settings.cacheDir,
    offline: settings.offline,
    hubEndpoint: settings.hubEndpoint,
    hubToken: settings.hubToken,
    imageSize: settings.imageSize,
    denseLayers: settings.denseLayers,
    denseStart: settings.denseStart,
    denseAttention: settings.denseAttention,
    precision: settings.quantize,
    int8Weights: settings.quantizeWeights,
    workers: settings.workers,
    intraOpThreads: settings.intraOpThreads,
    intraOpSpinning: settings.intraOpSpinning,
    executionProvider: settings.executionProvider,
    maxQueue: settings.maxQueue,
    jobTimeoutMs: settings.jobTimeoutMs,
    log,
  };
}
