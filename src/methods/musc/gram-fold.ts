// From one Gram block of layer-normed features to the nearest-neighbour cosines of every
// aggregation degree r (the LNAMD identity in lnamd.ts):
//   S_r[p][q] = Σ_{a∈N_r(p)} Σ_{b∈N_r(q)} G[a][b],   cos_r(p, q) = S_r[p][q] · (1/‖u_p‖ · 1/‖v_q‖)
// with N_r the zero-padded r×r neighbourhood (_LNAMD.py PatchMaker: Unfold, padding (r−1)/2) and
// u, v the neighbourhood sums (aggregatedInverseNorms). One matmul serves r = 1, 3 and 5; the box
// sums cost O(r) per entry instead of O(C) for a matmul per r.
// For each A patch p the block yields max_q cos_r(p, q), and for each B patch q the max over the
// block's p: both halves of the pair's mutual scores (msm.ts) from one matmul.
// Fixed summation orders (A's grid first, x before y, offsets ascending), so an entry depends only
// on the two images and which of them is A — never on the band or the thread.

import type { PatchGrid } from './features.ts';
import type { GramBlock } from './gram-kernel.ts';
import { checkDegree } from './lnamd.ts';

/** Per-degree arrays over one image's L patches. */
export type PerDegree = readonly Float64Array[];

export class GramFolder {
  private readonly px: Float64Array;
  private readonly py: Float64Array;
  private readonly qx: Float64Array;
  readonly maxRho: number;

  /** bandRows: the most grid rows of A one fold() covers. */
  constructor(
    readonly grid: PatchGrid,
    readonly degrees: readonly number[],
    readonly bandRows: number,
  ) {
    degrees.forEach(checkDegree);
    this.maxRho = Math.max(...degrees.map((r) => (r - 1) / 2));
    const L = grid.h * grid.w;
    const rows = Math.min(grid.h, bandRows + 2 * this.maxRho);
    this.px = new Float64Array(rows * grid.w * L);
    this.py = new Float64Array(Math.min(grid.h, bandRows) * grid.w * L);
    this.qx = new Float64Array(L);
  }

  /** Grid rows of A whose G rows fold() needs for output rows [y0, y1). */
  haloRows(y0: number, y1: number): { from: number; to: number } {
    return { from: Math.max(0, y0 - this.maxRho), to: Math.min(this.grid.h, y1 + this.maxRho) };
  }

  /**
   * For A's grid rows [y0, y1): rowMax[d][p] = max_q cos (written), colMax[d][q] = max(colMax[d][q],
   * max_p cos) (accumulated; start it at −Infinity). `g` must hold A's rows haloRows(y0, y1).
   */
  fold(g: GramBlock, y0: number, y1: number, invA: PerDegree, invB: PerDegree, rowMax: PerDegree, colMax: PerDegree): void {
    const { w } = this.grid;
    const L = this.grid.h * w;
    if (y1 - y0 > this.bandRows) throw new RangeError(`band of ${y1 - y0} rows exceeds ${this.bandRows}`);
    const halo = this.haloRows(y0, y1);
    if (g.firstRow > halo.from * w || g.firstRow + g.data.length / g.stride < halo.to * w) {
      throw new RangeError(`the Gram block does not cover rows ${halo.from * w}..${halo.to * w}`);
    }
    for (let d = 0; d < this.degrees.length; d++) {
      const rho = (this.degrees[d] - 1) / 2;
      if (rho === 0) this.foldPlain(g, y0 * w, y1 * w, L, invA[d], invB[d], rowMax[d], colMax[d]);
      else this.foldBoxed(g, y0, y1, rho, invA[d], invB[d], rowMax[d], colMax[d]);
    }
  }

  /** r = 1: cos = G · (1/‖x_p‖ · 1/‖y_q‖). */
  private foldPlain(g: GramBlock, p0: number, p1: number, L: number, ia: Float64Array, ib: Float64Array, rowMax: Float64Array, colMax: Float64Array): void {
    const { data, stride, firstRow } = g;
    for (let p = p0; p < p1; p++) {
      const o = (p - firstRow) * stride;
      const a = ia[p];
      let best = -Infinity;
      for (let q = 0; q < L; q++) {
        const c = data[o + q] * (a * ib[q]);
        if (c > best) best = c;
        if (c > colMax[q]) colMax[q] = c;
      }
      rowMax[p] = best;
    }
  }

  /** r > 1: box sums over A's grid (x, then y), then per row over B's grid (x, then y). */
  private foldBoxed(g: GramBlock, y0: number, y1: number, rho: number, ia: Float64Array, ib: Float64Array, rowMax: Float64Array, colMax: Float64Array): void {
    const { h, w } = this.grid;
    const L = h * w;
    const { data, stride, firstRow } = g;
    const { px, py, qx } = this;
    const halo = this.haloRows(y0, y1);
    // A's grid, x: px[row] = Σ_dx G[p + dx] within p's grid row.
    for (let y = halo.from; y < halo.to; y++) {
      for (let x = 0; x < w; x++) {
        const o = ((y - halo.from) * w + x) * L;
        const lo = Math.max(-rho, -x);
        const hi = Math.min(rho, w - 1 - x);
        let s = (y * w + x + lo - firstRow) * stride;
        for (let q = 0; q < L; q++) px[o + q] = data[s + q];
        for (let dx = lo + 1; dx <= hi; dx++) {
          s += stride;
          for (let q = 0; q < L; q++) px[o + q] += data[s + q];
        }
      }
    }
    // A's grid, y: py[row] = Σ_dy px[row + dy·w].
    for (let y = y0; y < y1; y++) {
      const lo = Math.max(-rho, -y);
      const hi = Math.min(rho, h - 1 - y);
      const o = (y - y0) * w * L;
      const s0 = (y + lo - halo.from) * w * L;
      for (let i = 0; i < w * L; i++) py[o + i] = px[s0 + i];
      for (let dy = lo + 1; dy <= hi; dy++) {
        const s = (y + dy - halo.from) * w * L;
        for (let i = 0; i < w * L; i++) py[o + i] += px[s + i];
      }
    }
    // B's grid per A patch: x into qx, then y, then the cosine and both maxima.
    for (let p = y0 * w; p < y1 * w; p++) {
      const o = (p - y0 * w) * L;
      for (let yq = 0; yq < h; yq++) {
        const row = o + yq * w;
        for (let x = 0; x < w; x++) {
          const lo = Math.max(-rho, -x);
          const hi = Math.min(rho, w - 1 - x);
          let s = py[row + x + lo];
          for (let dx = lo + 1; dx <= hi; dx++) s += py[row + x + dx];
          qx[yq * w + x] = s;
        }
      }
      const a = ia[p];
      let best = -Infinity;
      for (let yq = 0; yq < h; yq++) {
        const lo = Math.max(-rho, -yq);
        const hi = Math.min(rho, h - 1 - yq);
        for (let x = 0; x < w; x++) {
          const q = yq * w + x;
          let s = qx[q + lo * w];
          for (let dy = lo + 1; dy <= hi; dy++) s += qx[q + dy * w];
          const c = s * (a * ib[q]);
          if (c > best) best = c;
          if (c > colMax[q]) colMax[q] = c;
        }
      }
      rowMax[p] = best;
    }
  }
}
