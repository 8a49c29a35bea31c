// The transpose of the scoring's bilinear upsampling, for pulling the map-level loss gradient
// back to the patch grid. upsampleBilinear is linear and separable, P = U_h · F · U_wᵀ, so
// dL/dF = U_hᵀ · dL/dP · U_w exactly. The 1-D operators are not derived again here: they are
// read off upsampleBilinear itself by upsampling unit vectors, so they are the very operator
// the forward pass used.
import { upsampleBilinear } from '../imaging/resample-maps.ts';

const operators = new Map<string, Float64Array>();

/** U ([m, n] row-major): upsampling n → m values along one axis, as upsampleBilinear does it. */
export function upsampleOperator(n: number, m: number): Float64Array {
  const key = `${n}:${m}`;
  const hit = operators.get(key);
  if (hit) return hit;
  const u = new Float64Array(m * n);
  const unit = new Float32Array(n);
  for (let k = 0; k < n; k++) {
    unit.fill(0);
    unit[k] = 1;
    // A 1 × n grid upsampled to 1 × m: column k of U.
    const column = upsampleBilinear(unit, 1, n, m, 1);
    for (let o = 0; o < m; o++) u[o * n + k] = column[o];
  }
  if (operators.size > 64) operators.clear();
  operators.set(key, u);
  return u;
}

/** dL/dF ([h, w]) from dL/dP ([outH, outW]) for P = upsampleBilinear(F, h, w, outW, outH). */
export function upsampleBilinearTranspose(dOut: Float64Array, h: number, w: number, outW: number, outH: number): Float64Array {
  if (dOut.length !== outW * outH) throw new RangeError('upsampleBilinearTranspose: bad gradient size');
  const uw = upsampleOperator(w, outW);
  const uh = upsampleOperator(h, outH);
  // rows[y, gx] = Σ_x dOut[y, x] · U_w[x, gx]
  const rows = new Float64Array(outH * w);
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) {
      const g = dOut[y * outW + x];
      if (g === 0) continue;
      const ur = x * w;
      const dst = y * w;
      for (let gx = 0; gx < w; gx++) rows[dst + gx] += g * uw[ur + gx];
    }
  }
  // out[gy, gx] = Σ_y U_h[y, gy] · rows[y, gx]
  const out = new Float64Array(h * w);
  for (let y = 0; y < outH; y++) {
    for (let gy = 0; gy < h; gy++) {
      const a = uh[y * h + gy];
      if (a === 0) continue;
      const src = y * w;
      const dst = gy * w;
      for (let gx = 0; gx < w; gx++) out[dst + gx] += a * rows[src + gx];
    }
  }
  return out;
}
