// A detector whose inference queue is always full, for the overload gate's test and benchmark:
// every detection must be refused before it runs.
import type { Detector } from '../detection/types.ts';

export const fullDetector: Detector = {
  ready: true,
  info: () => {
    throw new Error('not used');
  },
  detect: async () => {
    throw new Error('a refused detection must not run');
  },
  close: async () => {},
  admissionFull: () => true,
};
