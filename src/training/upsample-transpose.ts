// The transpose of the scoring's bilinear upsampling, for pulling the map-level loss gradient
// back to the patch grid. upsampleBilinear is linear and separable, P = U_h · F · U_wᵀ, so
// dL/dF = U_hᵀ · dL/dP · U_w exactly: the same tap tables (imaging/resample-maps.ts
// bilinearTaps) transposed, applied by the same separable passes.
import { bilinearTaps } from '../imaging/resample-maps.ts';
import { resample2d, transposeTaps, type TapTable } from '../imaging/taps.ts';

const transposed = new Map<string, TapTable>();

/**
 * Uᵀ (n ← m) for one axis. Its weights are rounded to float32: this operator used to be read
 * off upsampleBilinear's float32 output, and the rounding keeps trained prompts bit-identical.
 */
export function upsampleTransposeTaps(n: number, m: number): TapTable {
  const key = `${n}:${m}`;
  let t = transposed.get(key);
  if (t === undefined) {
    t = transposeTaps(bilinearTaps(n, m), Math.fround);
    if (transposed.size > 64) transposed.clear();
    transposed.set(key, t);
  }
  return t;
}

/** dL/dF ([h, w]) from dL/dP ([outH, outW]) for P = upsampleBilinear(F, h, w, outW, outH). */
export function upsampleBilinearTranspose(dOut: Float64Array, h: number, w: number, outW: number, outH: number): Float64Array {
  if (dOut.length !== outW * outH) throw new RangeError('upsampleBilinearTranspose: bad gradient size');
  const out = new Float64Array(h * w);
  resample2d(dOut, upsampleTransposeTaps(w, outW), upsampleTransposeTaps(h, outH), { out });
  return out;
}
