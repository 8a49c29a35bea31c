// Nearest-neighbour resizing, for masks: a defect mask must stay 0/1, so it is sampled, never
// averaged. One tap per output index (taps.ts), at the input pixel under the output pixel's centre.
import { resample2d, tapsFrom, type NumericArray, type TapTable } from './taps.ts';

/** n → m: output o reads input min(n − 1, ⌊(o + 0.5)·n / m⌋). */
export function nearestTaps(n: number, m: number): TapTable {
  return tapsFrom(n, m, 1, (o, add) => add(Math.min(n - 1, Math.floor(((o + 0.5) * n) / m)), 1));
}

/** `src` ([height, width, channels] interleaved) resized to [outH, outW, channels], values unchanged. */
export function resizeNearest(src: NumericArray, width: number, height: number, outW: number, outH: number, channels = 1): Float32Array {
  return resample2d(src, nearestTaps(width, outW), nearestTaps(height, outH), { channels }) as Float32Array;
}
