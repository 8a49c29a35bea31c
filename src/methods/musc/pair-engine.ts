// One image pair's nearest-neighbour cosines for every aggregation degree r, from ONE Gram
// matrix of layer-normed features (the LNAMD identity in lnamd.ts):
//   S_r[p][q] = Σ_{a∈N_r(p)} Σ_{b∈N_r(q)} G[a][b],   cos_r(p, q) = S_r[p][q] · (1/‖u_p‖ · 1/‖v_q‖)
// with N_r the zero-padded r×r neighbourhood (_LNAMD.py PatchMaker: Unfold, padding (r−1)/2) and
// u, v the neighbourhood sums. The box sums cost O(r) per entry instead of O(C) for a matmul per r.
// For each patch p of A the pair yields max_q cos_r(p, q), and for each patch q of B max_p: both
// halves of the pair's mutual scores from one matmul.
// Chunking: G is computed for a band of A's grid rows (plus the r/2 halo rows the box needs) ×
// all of B's patches at a time, folded into the maxima immediately. The summation order of every
// entry is fixed (A's grid x then y, then B's grid x then y, offsets ascending), so results do not
// depend on the band size.
import type { MsmLayer, PatchGrid } from './features.ts';
import { instantiateKernels, type Kernels } from './kernels.ts';
import { memoryOfAtLeast } from '../../util/wasm-asm.ts';

const ALL_ONES = 0xffffffff;

/** Regions of the engine's memory for one layer shape, as float offsets (the kernels take bytes). */
interface Layout {
  images: number;
  grid: PatchGrid;
  patches: number;
  /** patches rounded up to a multiple of 8: the panel height and the stride of every row. */
  stride: number;
  channels: number;
  degrees: number[];
  rhos: number[];
  maxRho: number;
  bandRows: number;
  panels: number;
  inv: number;
  gram: number;
  px: number;
  rowA: number;
  rowB: number;
  masks: number;
  /** LNAMD norms: one image's normed rows [L][channelStride], their x sums, their x-then-y sums, Σ². */
  channelStride: number;
  rows: number;
  rowsX: number;
  rowsXY: number;
  squares: number;
  rowMax: number;
  colMax: number;
  floats: number;
}

function layoutFor(layer: MsmLayer, bandRows: number): Layout {
  const { images, grid, channels, degrees } = layer;
  const patches = grid.h * grid.w;
  const stride = Math.ceil(patches / 8) * 8;
  const rhos = degrees.map((r) => (r - 1) >> 1);
  const maxRho = Math.max(...rhos);
  const haloPatches = Math.min(grid.h, bandRows + 2 * maxRho) * grid.w;
  // Shifted reads of addShiftMasked reach maxRho·(w + 1) floats outside a row; masked to 0.
  const guard = Math.ceil((maxRho * (grid.w + 1)) / 4) * 4 + 4;
  let at = 0;
  const take = (floats: number) => {
    const start = at;
    at += Math.ceil(floats / 4) * 4;
    return start;
  };
  const panels = take(images * stride * channels);
  const inv = take(images * degrees.length * stride);
  const gram = take((haloPatches + 8) * stride);
  const px = take(haloPatches * stride);
  const guarded = (floats: number) => take(guard + floats + guard) + guard;
  const rowA = guarded(stride);
  const rowB = guarded(stride);
  const masks = take((2 * (2 * maxRho + 1) + 1) * stride);
  const channelStride = Math.ceil(channels / 4) * 4;
  const rows = take(patches * channelStride);
  const rowsX = take(patches * channelStride);
  const rowsXY = take(patches * channelStride);
  const squares = take(stride);
  const rowMax = take(degrees.length * stride);
  const colMax = take(degrees.length * stride);
  const shape = { images, grid, patches, stride, channels, degrees: [...degrees], rhos, maxRho, bandRows };
  return { ...shape, panels, inv, gram, px, rowA, rowB, masks, channelStride, rows, rowsX, rowsXY, squares, rowMax, colMax, floats: at };
}

/** A pair engine holding one layer of a batch in its own WebAssembly memory (one per thread). */
export class PairEngine {
  private readonly memory = new WebAssembly.Memory({ initial: 1 });
  private readonly k: Kernels = instantiateKernels(this.memory);
  private f32 = new Float32Array(this.memory.buffer);
  private u32 = new Uint32Array(this.memory.buffer);
  private layout: Layout | undefined;

  /**
   * Packs the layer's normed features into 8-patch panels ([⌈L/8⌉][C][8], zero-padded) and
   * computes, per degree, 1/‖Σ_{a∈N_r(p)} x̃_a‖ of every patch (0 for a zero sum, where the
   * authors' division gives NaN).
   */
  load(layer: MsmLayer, bandRows: number): void {
    const lay = layoutFor(layer, Math.max(1, Math.min(layer.grid.h, bandRows)));
    const bytes = 4 * lay.floats;
    if (bytes > this.memory.buffer.byteLength) {
      const buffer = memoryOfAtLeast(this.memory, bytes);
      this.f32 = new Float32Array(buffer);
      this.u32 = new Uint32Array(buffer);
    }
    const { f32, u32 } = this;
    const { images, patches: L, stride, channels: C, degrees, grid } = lay;
    f32.fill(0, 0, lay.floats);
    for (let i = 0; i < images; i++) {
      const x = layer.normed.subarray(i * L * C, (i + 1) * L * C);
      const base = lay.panels + i * stride * C;
      for (let p = 0; p < L; p++) {
        const o = base + (p >> 3) * C * 8 + (p & 7);
        for (let c = 0, s = p * C; c < C; c++) f32[o + 8 * c] = x[s + c];
      }
      this.inverseNorms(lay, x, lay.inv + i * degrees.length * stride);
    }
    // masks: x shifts −ρ…ρ, y shifts −ρ…ρ, then "q < L".
    const span = 2 * lay.maxRho + 1;
    for (let s = 0; s < span; s++) {
      const shift = s - lay.maxRho;
      for (let q = 0; q < L; q++) {
        const x = q % grid.w;
        const y = (q / grid.w) | 0;
        if (x + shift >= 0 && x + shift < grid.w) u32[lay.masks + s * stride + q] = ALL_ONES;
        if (y + shift >= 0 && y + shift < grid.h) u32[lay.masks + (span + s) * stride + q] = ALL_ONES;
      }
    }
    u32.fill(ALL_ONES, lay.masks + 2 * span * stride, lay.masks + 2 * span * stride + L);
    this.layout = lay;
  }

  /** Per degree, the inverse norms of one image's neighbourhood sums into inv[d·stride + p]. */
  private inverseNorms(l: Layout, x: Float32Array, inv: number): void {
    const { k, f32 } = this;
    const { patches: L, channels: C, channelStride: cs, grid } = l;
    const { h, w } = grid;
    for (let p = 0; p < L; p++) f32.set(x.subarray(p * C, (p + 1) * C), l.rows + p * cs);
    for (let d = 0; d < l.degrees.length; d++) {
      const rho = l.rhos[d];
      let src = l.rows;
      if (rho > 0) {
        f32.fill(0, l.rowsX, l.rowsX + L * cs);
        for (let y = 0; y < h; y++) {
          for (let dx = -rho; dx <= rho; dx++) {
            const x0 = Math.max(0, -dx);
            const x1 = Math.min(w, w - dx);
            k.add(4 * (l.rowsX + (y * w + x0) * cs), 4 * (l.rows + (y * w + x0 + dx) * cs), (x1 - x0) * cs);
          }
        }
        f32.fill(0, l.rowsXY, l.rowsXY + L * cs);
        for (let dy = -rho; dy <= rho; dy++) {
          const ya = Math.max(0, -dy);
          const yb = Math.min(h, h - dy);
          if (yb > ya) k.add(4 * (l.rowsXY + ya * w * cs), 4 * (l.rowsX + (ya + dy) * w * cs), (yb - ya) * w * cs);
        }
        src = l.rowsXY;
      }
      k.rowSquares(4 * src, L, cs, 4 * l.squares);
      for (let p = 0; p < L; p++) {
        const sq = f32[l.squares + p];
        f32[inv + d * l.stride + p] = sq > 0 ? 1 / Math.sqrt(sq) : 0;
      }
    }
  }

  /**
   * max cosines of pair (a, b) for every degree: rowMax(d)[p] over B's patches for A's patch p,
   * colMax(d)[q] over A's patches for B's patch q. Views, valid until the next call.
   */
  pair(a: number, b: number): { rowMax: Float32Array[]; colMax: Float32Array[] } {
    const lay = this.layout;
    if (!lay) throw new Error('PairEngine.pair before load');
    if (!(a >= 0 && a < lay.images && b >= 0 && b < lay.images)) throw new RangeError(`image index out of range: ${a}, ${b}`);
    const { f32 } = this;
    const { stride, degrees, grid } = lay;
    f32.fill(-Infinity, lay.colMax, lay.colMax + degrees.length * stride);
    for (let y0 = 0; y0 < grid.h; y0 += lay.bandRows) this.band(a, b, y0, Math.min(grid.h, y0 + lay.bandRows));
    const view = (base: number, d: number) => f32.subarray(base + d * stride, base + d * stride + lay.patches);
    return { rowMax: degrees.map((_, d) => view(lay.rowMax, d)), colMax: degrees.map((_, d) => view(lay.colMax, d)) };
  }

  /** A's grid rows [y0, y1): G for the rows and their halo, then every degree's fold. */
  private band(a: number, b: number, y0: number, y1: number): void {
    const lay = this.layout as Layout;
    const { k, f32 } = this;
    const { stride, channels, grid, degrees } = lay;
    const w = grid.w;
    const from = Math.max(0, y0 - lay.maxRho);
    const to = Math.min(grid.h, y1 + lay.maxRho);
    const pb0 = (from * w) >> 2;
    const pb1 = (to * w + 3) >> 2;
    const panelFloats = stride * channels;
    k.gram(4 * (lay.panels + a * panelFloats), pb0, pb1, 4 * (lay.panels + b * panelFloats), stride / 8, channels, 4 * lay.gram, 4 * stride);
    const firstRow = 4 * pb0;
    const gRow = (p: number) => lay.gram + (p - firstRow) * stride;
    const rows = (y1 - y0) * w;
    const span = 2 * lay.maxRho + 1;
    const valid = 4 * (lay.masks + 2 * span * stride);
    for (let d = 0; d < degrees.length; d++) {
      const rho = lay.rhos[d];
      const ia = 4 * (lay.inv + (a * degrees.length + d) * stride + y0 * w);
      const ib = 4 * (lay.inv + (b * degrees.length + d) * stride);
      const rowMax = 4 * (lay.rowMax + d * stride + y0 * w);
      const colMax = 4 * (lay.colMax + d * stride);
      if (rho === 0) {
        k.cosMax(4 * gRow(y0 * w), rows, stride, ia, ib, valid, rowMax, colMax);
        continue;
      }
      const yFrom = Math.max(0, y0 - rho);
      const yTo = Math.min(grid.h, y1 + rho);
      // A's grid, x: px[p] = Σ_dx G[p + dx], p + dx within p's grid row.
      f32.fill(0, lay.px, lay.px + (yTo - yFrom) * w * stride);
      for (let y = yFrom; y < yTo; y++) {
        for (let dx = -rho; dx <= rho; dx++) {
          const x0 = Math.max(0, -dx);
          const x1 = Math.min(w, w - dx);
          const p = y * w + x0;
          k.add(4 * (lay.px + (p - yFrom * w) * stride), 4 * gRow(p + dx), (x1 - x0) * stride);
        }
      }
      // Per output row: A's grid y, B's grid x and y, and the maxima, in two L1-sized rows.
      const maskX0 = 4 * (lay.masks + (lay.maxRho - rho) * stride);
      const maskY0 = 4 * (lay.masks + (span + lay.maxRho - rho) * stride);
      for (let p = y0 * w; p < y1 * w; p++) {
        const i = p - y0 * w;
        const y = (p / w) | 0;
        const pxRow = 4 * (lay.px + (p - yFrom * w) * stride);
        k.foldRow(pxRow, y, grid.h, w, rho, stride, maskX0, maskY0, 4 * lay.rowA, 4 * lay.rowB, ia + 4 * i, ib, valid, rowMax + 4 * i, colMax);
      }
    }
  }
}
