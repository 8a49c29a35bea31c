// From per-layer, per-degree MSM scores to maps and image scores (models/musc.py,
// make_category_data()):
//   anomaly_maps_l = torch.mean(<MSM scores of each layer>, 0)      per r: mean over layers
//   anomaly_maps_iter = torch.mean(anomaly_maps_r, 0)               then the mean over r
//   F.interpolate(…, size=img_resize, mode='bilinear', align_corners=True)
//   ac_score = anomaly_maps.reshape(B, -1).max(-1)                  max of the UPSAMPLED map
// No smoothing anywhere. With align_corners=True the upsampled samples hit the grid's interior
// points only when (S − 1) is a multiple of the grid's (g − 1) spacing, so the image score is
// usually a little below the grid maximum; upsampledMax reproduces it without building the map.

import type { PatchGrid } from './features.ts';
import { MuscInputError } from './min-images.ts';

/** Mean over layers for each degree, then over degrees: sums[d] holds Σ_layers, [N·L] each. */
export function meanOverLayersAndDegrees(sums: readonly Float64Array[], layers: number): Float64Array {
  const out = new Float64Array(sums[0].length);
  for (let i = 0; i < out.length; i++) {
    let s = 0;
    for (const perLayer of sums) s += perLayer[i] / layers;
    out[i] = s / sums.length;
  }
  return out;
}

/** Source taps of align_corners=True: src = o·(n − 1)/(m − 1). */
function alignCornersTaps(n: number, m: number): { i0: Int32Array; i1: Int32Array; frac: Float64Array } {
  const i0 = new Int32Array(m);
  const i1 = new Int32Array(m);
  const frac = new Float64Array(m);
  const scale = m > 1 ? (n - 1) / (m - 1) : 0;
  for (let o = 0; o < m; o++) {
    const src = o * scale;
    const lo = Math.min(Math.floor(src), n - 1);
    i0[o] = lo;
    i1[o] = Math.min(lo + 1, n - 1);
    frac[o] = src - lo;
  }
  return { i0, i1, frac };
}

function checkSize(outH: number, outW: number): void {
  for (const v of [outH, outW]) if (!Number.isInteger(v) || v < 1) throw new MuscInputError(`output size must be a positive integer, got ${v}`);
}

/** Calls visit(v) for every sample of the bilinear align_corners=True resize of `map` ([h·w]). */
function forEachSample(map: ArrayLike<number>, grid: PatchGrid, outH: number, outW: number, visit: (v: number, index: number) => void): void {
  checkSize(outH, outW);
  if (map.length !== grid.h * grid.w) throw new MuscInputError(`map has ${map.length} values, expected ${grid.h}·${grid.w}`);
  const ys = alignCornersTaps(grid.h, outH);
  const xs = alignCornersTaps(grid.w, outW);
  for (let oy = 0; oy < outH; oy++) {
    const r0 = ys.i0[oy] * grid.w;
    const r1 = ys.i1[oy] * grid.w;
    const fy = ys.frac[oy];
    for (let ox = 0; ox < outW; ox++) {
      const x0 = xs.i0[ox];
      const x1 = xs.i1[ox];
      const fx = xs.frac[ox];
      const top = (1 - fx) * map[r0 + x0] + fx * map[r0 + x1];
      const bottom = (1 - fx) * map[r1 + x0] + fx * map[r1 + x1];
      visit((1 - fy) * top + fy * bottom, oy * outW + ox);
    }
  }
}

/** torch interpolate(mode='bilinear', align_corners=True) of one [h·w] map to [outH·outW]. */
export function upsampleAlignCorners(map: ArrayLike<number>, grid: PatchGrid, outH: number, outW: number): Float32Array {
  const out = new Float32Array(outH * outW);
  forEachSample(map, grid, outH, outW, (v, i) => (out[i] = v));
  return out;
}

/** The authors' image score: max of the map upsampled to size×size (align_corners=True). */
export function upsampledMax(map: ArrayLike<number>, grid: PatchGrid, size: number): number {
  let best = -Infinity;
  forEachSample(map, grid, size, size, (v) => {
    if (v > best) best = v;
  });
  return best;
}
