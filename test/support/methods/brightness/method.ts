// A test-only scoring method, to show that a method is a folder plus a registry line: the map is
// each pixel's darkness (1 − luma), the score its maximum. It uses no graph and no text; its
// worker task (worker-task.ts) runs in the inference workers like any method's.
import type { MethodRunner, ScoringMethod } from '../../../../src/methods/contract.ts';
import { rgbForWorker } from '../../../../src/methods/worker-image.ts';
import type { BrightnessOutcome, BrightnessPayload } from './worker-task.ts';

export const brightness: ScoringMethod = {
  name: 'darkness',
  aliases: ['dark'],
  description: 'test-only: 1 − luma per pixel',
  promptModes: ['templated'],
  taskModules: [new URL('./worker-task.ts', import.meta.url).href],
  validate(options) {
    if (options.prompts.mode !== 'templated') throw new Error('unreachable in the tests');
  },
  open(ctx): MethodRunner {
    const score = async (image: Parameters<MethodRunner['score']>[0]['image'], threshold: number, signal?: AbortSignal) => {
      const payload: BrightnessPayload = { image: rgbForWorker(image), grid: ctx.runtime.grid, threshold };
      return { ...(await ctx.runtime.pool.runTask<BrightnessOutcome>('darkness', payload, [], signal)), textMs: 0 };
    };
    return {
      async warmUp() {
        await score({ width: 2, height: 2, rgb: Buffer.alloc(12, 255), format: 'raw' }, 0.5);
      },
      score: (req) => score(req.image, req.threshold, req.signal),
    };
  },
};
