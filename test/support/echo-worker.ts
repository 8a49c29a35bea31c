// A worker module for the util/worker tests.
import type { Handlers } from '../../src/util/worker/protocol.ts';

export function setup(data: { greeting: string; failSetup?: boolean }): Handlers {
  if (data.failSetup) throw new Error('setup refused');
  return {
    greet: (name: string) => ({ result: `${data.greeting}, ${name}` }),
    async double(values: Float64Array) {
      const out = values.map((v) => 2 * v);
      return { result: out, transfer: [out.buffer as ArrayBuffer] };
    },
    fail: () => {
      throw new Error('handler failed');
    },
    exit: () => process.exit(7),
  };
}
