// The returned patch grid → a map the size of the image (or of a working size that keeps the
// browser responsive): bilinear, with the align_corners=false convention the server uses.

/** Longest side of the map the page computes regions and contours on. */
export const MAX_WORKING_SIDE = 1024;

export interface ValueMap {
  width: number;
  height: number;
  values: Float32Array;
}

/** The size maps are computed at for an image: the image's own, scaled down to MAX_WORKING_SIDE. */
export function workingSize(width: number, height: number, maxSide = MAX_WORKING_SIDE): { width: number; height: number } {
  const scale = Math.min(1, maxSide / Math.max(width, height));
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
}

function taps(n: number, m: number): { i0: Int32Array; i1: Int32Array; frac: Float32Array } {
  const i0 = new Int32Array(m);
  const i1 = new Int32Array(m);
  const frac = new Float32Array(m);
  const scale = n / m;
  for (let o = 0; o < m; o++) {
    const src = Math.max(0, (o + 0.5) * scale - 0.5);
    const lo = Math.min(Math.floor(src), n - 1);
    i0[o] = lo;
    i1[o] = Math.min(lo + 1, n - 1);
    frac[o] = src - lo;
  }
  return { i0, i1, frac };
}

/** Bilinear resize of a row-major grid (gw × gh) to outW × outH. */
export function upsampleBilinear(grid: ArrayLike<number>, gw: number, gh: number, outW: number, outH: number): ValueMap {
  if (grid.length < gw * gh) throw new RangeError(`grid has ${grid.length} values, expected ${gw}×${gh}`);
  const xs = taps(gw, outW);
  const ys = taps(gh, outH);
  const rows = new Float32Array(gh * outW);
  for (let gy = 0; gy < gh; gy++) {
    for (let x = 0; x < outW; x++) {
      const a = grid[gy * gw + xs.i0[x]];
      const b = grid[gy * gw + xs.i1[x]];
      rows[gy * outW + x] = a + (b - a) * xs.frac[x];
    }
  }
  const values = new Float32Array(outW * outH);
  for (let y = 0; y < outH; y++) {
    const r0 = ys.i0[y] * outW;
    const r1 = ys.i1[y] * outW;
    const f = ys.frac[y];
    for (let x = 0; x < outW; x++) {
      const a = rows[r0 + x];
      values[y * outW + x] = a + (rows[r1 + x] - a) * f;
    }
  }
  return { width: outW, height: outH, values };
}
