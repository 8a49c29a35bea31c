// Every resampling here — torch's antialiased bicubic for the model input, bilinear upsampling
// and Gaussian smoothing of maps, nearest-neighbour for masks, and the transpose of the
// bilinear upsampling for training — is separable and linear, so each one is a pair of 1-D
// tap tables (for each output index: which input indices, with which weights), applied along
// the rows and then along the columns by resample2d below. Only the tables differ.
//
// Sums run over the taps in table order in float64, as each kernel summed before they shared
// this code, so their outputs are bit-for-bit the same (up to the sign of an exact zero).
// The inner loops are specialised (2-tap rows, RGB runs, four taps per pass over a row)
// because the model-input resize and the map upsampling run on every request.

import { threadKernel, type ColumnKernel } from './resize-kernel.ts';
import { memoryOfAtLeast } from '../util/wasm-asm.ts';

/**
 * A 1-D linear operator from `inSize` to `outSize` values:
 * out[o] = Σ_{k < count[o]} weights[o·stride + k] · in[indices[o·stride + k]].
 * An index may repeat (clamped borders); unused slots hold index 0 and weight 0 (so adding
 * them changes nothing).
 */
export interface TapTable {
  inSize: number;
  outSize: number;
  stride: number;
  /** Every output's taps are consecutive input indices (set by tapsFrom; enables stepping). */
  contiguous: boolean;
  count: Int32Array;
  indices: Int32Array;
  weights: Float64Array;
}

export type NumericArray = Uint8Array | Float32Array | Float64Array;

export function checkSize(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 1) throw new RangeError(`${name} must be a positive integer, got ${v}`);
}

/** Builds a table from a callback that lists each output's taps in order. */
export function tapsFrom(inSize: number, outSize: number, stride: number, fill: (o: number, add: (index: number, weight: number) => void) => void): TapTable {
  const t: TapTable = {
    inSize,
    outSize,
    stride,
    contiguous: true,
    count: new Int32Array(outSize),
    indices: new Int32Array(outSize * stride),
    weights: new Float64Array(outSize * stride),
  };
  for (let o = 0; o < outSize; o++) {
    let n = 0;
    const base = o * stride;
    fill(o, (index, weight) => {
      if (n === stride) throw new RangeError(`more than ${stride} taps for output ${o}`);
      if (n > 0 && index !== t.indices[base + n - 1] + 1) t.contiguous = false;
      t.indices[base + n] = index;
      t.weights[base + n] = weight;
      n++;
    });
    t.count[o] = n;
  }
  return t;
}

/** True when the table copies its input unchanged: weight 1 on its own index, 0 elsewhere. */
export function isIdentity(t: TapTable): boolean {
  if (t.inSize !== t.outSize) return false;
  for (let o = 0; o < t.outSize; o++) {
    const base = o * t.stride;
    let own = 0;
    for (let k = 0; k < t.count[o]; k++) {
      const w = t.weights[base + k];
      if (t.indices[base + k] === o) own += w;
      else if (w !== 0) return false;
    }
    if (own !== 1) return false;
  }
  return true;
}

/** The table as a dense [outSize, inSize] matrix (taps on the same index added in order). */
export function denseMatrix(t: TapTable): Float64Array {
  const m = new Float64Array(t.outSize * t.inSize);
  for (let o = 0; o < t.outSize; o++) {
    const base = o * t.stride;
    for (let k = 0; k < t.count[o]; k++) m[o * t.inSize + t.indices[base + k]] += t.weights[base + k];
  }
  return m;
}

/**
 * outer ∘ inner: first `inner` (n → m), then `outer` (m → p), as one table n → p. Each output
 * covers the band from its first to its last input index with a non-zero weight (zeros inside
 * the band kept), so applying it costs O(band) however wide `outer` is.
 */
export function composeTaps(outer: TapTable, inner: TapTable): TapTable {
  if (outer.inSize !== inner.outSize) throw new RangeError(`cannot compose ${inner.inSize}→${inner.outSize} with ${outer.inSize}→${outer.outSize}`);
  const n = inner.inSize;
  const p = outer.outSize;
  const dense = new Float64Array(p * n);
  const lo = new Int32Array(p);
  const hi = new Int32Array(p);
  let stride = 1;
  for (let o = 0; o < p; o++) {
    const row = o * n;
    const ob = o * outer.stride;
    for (let k = 0; k < outer.count[o]; k++) {
      const a = outer.weights[ob + k];
      const s = outer.indices[ob + k];
      const ib = s * inner.stride;
      for (let j = 0; j < inner.count[s]; j++) dense[row + inner.indices[ib + j]] += a * inner.weights[ib + j];
    }
    let first = n;
    let last = -1;
    for (let g = 0; g < n; g++) {
      if (dense[row + g] !== 0) {
        if (first === n) first = g;
        last = g;
      }
    }
    lo[o] = first === n ? 0 : first;
    hi[o] = last + 1;
    stride = Math.max(stride, hi[o] - lo[o]);
  }
  return tapsFrom(n, p, stride, (o, add) => {
    for (let g = lo[o]; g < hi[o]; g++) add(g, dense[o * n + g]);
  });
}

/**
 * The transpose (adjoint) n ← m of an n → m table: for each input index, the outputs that read
 * it, in increasing output order, with the summed weight. `round` is applied to each summed
 * weight (e.g. Math.fround).
 */
export function transposeTaps(t: TapTable, round: (w: number) => number = (w) => w): TapTable {
  const dense = denseMatrix(t);
  const { inSize: n, outSize: m } = t;
  let stride = 1;
  for (let i = 0; i < n; i++) {
    let c = 0;
    for (let o = 0; o < m; o++) if (dense[o * n + i] !== 0) c++;
    stride = Math.max(stride, c);
  }
  return tapsFrom(m, n, stride, (i, add) => {
    for (let o = 0; o < m; o++) {
      const w = dense[o * n + i];
      if (w !== 0) add(o, round(w));
    }
  });
}

export interface Resample2dOptions {
  /** Input values per pixel, interleaved (3 for RGB). Default 1. */
  channels?: number;
  /** Precision of the values between the two passes. Default float64. */
  intermediate?: 'float64' | 'float32';
  /** Write channel planes (all of channel 0, then 1, …) instead of interleaved pixels. */
  planar?: boolean;
  out?: Float32Array | Float64Array;
}

/**
 * Ty · src · Txᵀ for each channel: `src` is [ty.inSize rows, tx.inSize columns, channels]
 * row-major; the result is [ty.outSize, tx.outSize] per channel, float32 unless `out` says
 * otherwise. Rows first (along x), then columns (along y), unless columns first costs under half
 * (single-channel long thin outputs); an identity table is skipped.
 */
export function resample2d(src: NumericArray, tx: TapTable, ty: TapTable, options: Resample2dOptions = {}): Float32Array | Float64Array {
  const channels = options.channels ?? 1;
  const inW = tx.inSize;
  const inH = ty.inSize;
  const outW = tx.outSize;
  const outH = ty.outSize;
  if (src.length < inW * inH * channels) throw new RangeError(`resample2d: need ${inW}×${inH}×${channels} values, got ${src.length}`);
  const out = options.out ?? new Float32Array(outW * outH * channels);
  if (out.length < outW * outH * channels) throw new RangeError(`resample2d: output holds ${out.length} values, need ${outW * outH * channels}`);
  if (channels === 1 && !isIdentity(tx) && !isIdentity(ty) && columnsFirstPays(tx, ty)) {
    // A long thin output (16384×2 from a 14×14 grid): along y first, the x pass runs over the
    // few output rows instead of every input row. Other shapes keep rows first, bit for bit.
    const cols = options.intermediate === 'float32' ? new Float32Array(outH * inW) : new Float64Array(outH * inW);
    resampleColumns(src, inW, ty, cols);
    resampleRows(cols, outH, 1, tx, out);
    return out;
  }
  let rows: NumericArray;
  if (isIdentity(tx)) rows = src;
  else {
    rows = options.intermediate === 'float32' ? new Float32Array(inH * outW * channels) : new Float64Array(inH * outW * channels);
    resampleRows(src, inH, channels, tx, rows);
  }
  resampleColumns(rows, outW * channels, ty, out, options.planar ? channels : 1);
  return out;
}

/** Multiply-adds of rows first vs columns first; the order changes only where it saves over half. */
function columnsFirstPays(tx: TapTable, ty: TapTable): boolean {
  const rowsFirst = ty.inSize * tx.outSize * tx.stride + tx.outSize * ty.outSize * ty.stride;
  const columnsFirst = tx.inSize * ty.outSize * ty.stride + ty.outSize * tx.outSize * tx.stride;
  return 2 * columnsFirst < rowsFirst;
}

/** Along x: each of `height` rows of t.inSize pixels → t.outSize pixels. */
export function resampleRows(src: NumericArray, height: number, channels: number, t: TapTable, dst: NumericArray): void {
  const { inSize, outSize, stride, count, indices, weights } = t;
  const inRow = inSize * channels;
  const outRow = outSize * channels;
  if (channels === 3 && t.contiguous) {
    // The model-input resize (RGB bytes, bicubic): taps are a run of neighbours, read by stepping.
    for (let y = 0; y < height; y++) {
      const s0 = y * inRow;
      const d0 = y * outRow;
      for (let x = 0; x < outSize; x++) {
        const b = x * stride;
        let r = 0;
        let g = 0;
        let bl = 0;
        let p = s0 + indices[b] * 3;
        for (let k = 0, n = count[x]; k < n; k++, p += 3) {
          const w = weights[b + k];
          r += src[p] * w;
          g += src[p + 1] * w;
          bl += src[p + 2] * w;
        }
        const d = d0 + x * 3;
        dst[d] = r;
        dst[d + 1] = g;
        dst[d + 2] = bl;
      }
    }
    return;
  }
  if (channels === 1 && stride === 2) {
    // Bilinear: two taps, no inner loop.
    for (let y = 0; y < height; y++) {
      const s0 = y * inRow;
      const d0 = y * outRow;
      for (let x = 0, b = 0; x < outSize; x++, b += 2) {
        dst[d0 + x] = src[s0 + indices[b]] * weights[b] + src[s0 + indices[b + 1]] * weights[b + 1];
      }
    }
    return;
  }
  if (channels === 1) {
    for (let y = 0; y < height; y++) {
      const s0 = y * inRow;
      const d0 = y * outRow;
      for (let x = 0; x < outSize; x++) {
        const b = x * stride;
        let s = 0;
        for (let k = 0, n = count[x]; k < n; k++) s += src[s0 + indices[b + k]] * weights[b + k];
        dst[d0 + x] = s;
      }
    }
    return;
  }
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < outSize; x++) {
      const b = x * stride;
      for (let c = 0; c < channels; c++) {
        let s = 0;
        for (let k = 0, n = count[x]; k < n; k++) s += src[y * inRow + indices[b + k] * channels + c] * weights[b + k];
        dst[y * outRow + x * channels + c] = s;
      }
    }
  }
}

/**
 * Along y: whole rows of `rowLength` values at a time (contiguous memory), summed in float64
 * in tap order. Up to four taps are added per pass over the row — (((acc + a) + b) + c) + d,
 * the same sums in the same order as one tap at a time, with a quarter of the memory traffic.
 * With planes > 1 the interleaved row is written out as that many channel planes.
 */
export function resampleColumns(src: NumericArray, rowLength: number, t: TapTable, dst: NumericArray, planes = 1): void {
  const { outSize, stride, count, indices, weights } = t;
  const pixels = rowLength / planes;
  const plane = pixels * outSize;
  const identity = isIdentity(t);
  if (identity && planes === 1) {
    dst.set(src.subarray(0, rowLength * outSize));
    return;
  }
  if (planes === 1 && !identity && t.contiguous && src instanceof Float64Array && dst instanceof Float32Array && rowLength >= 8 && src.byteLength <= MAX_KERNEL_BYTES) {
    const kernel = threadKernel();
    if (kernel) return mapColumnsInKernel(kernel, src, rowLength, t, dst);
  }
  const acc = new Float64Array(rowLength);
  for (let y = 0; y < outSize; y++) {
    const b = y * stride;
    const n = count[y];
    if (identity) {
      acc.set(src.subarray(y * rowLength, (y + 1) * rowLength));
    } else if (n === 2 && planes === 1) {
      // Bilinear: both taps and the write in one pass.
      const w0 = weights[b];
      const w1 = weights[b + 1];
      const s0 = indices[b] * rowLength;
      const s1 = indices[b + 1] * rowLength;
      const d0 = y * rowLength;
      for (let i = 0; i < rowLength; i++) dst[d0 + i] = w0 * src[s0 + i] + w1 * src[s1 + i];
      continue;
    } else {
      acc.fill(0);
      for (let k = 0; k < n; k += 4) addTaps(acc, src, rowLength, indices, weights, b + k, Math.min(4, n - k));
    }
    const d0 = y * pixels;
    if (planes === 1) {
      dst.set(acc, y * rowLength);
    } else if (planes === 3) {
      for (let x = 0, i = 0; x < pixels; x++, i += 3) {
        dst[d0 + x] = acc[i];
        dst[plane + d0 + x] = acc[i + 1];
        dst[2 * plane + d0 + x] = acc[i + 2];
      }
    } else {
      for (let x = 0; x < pixels; x++) for (let c = 0; c < planes; c++) dst[c * plane + d0 + x] = acc[x * planes + c];
    }
  }
}

/** Float64 rows up to this size go through the WebAssembly kernel (copied into its memory). */
const MAX_KERNEL_BYTES = 16 << 20;

/**
 * resampleColumns for float64 rows into float32 (the maps' upsampling and blur): the same sums
 * in the same order (tap order, from 0), eight values per step in WebAssembly
 * (resize-kernel.ts); the last rowLength % 8 values of each row in JavaScript.
 */
function mapColumnsInKernel(kernel: ColumnKernel, src: Float64Array, rowLength: number, t: TapTable, dst: Float32Array): void {
  const { outSize, stride, count, indices, weights } = t;
  // Memory: the rows, the taps' weights, one float32 output row.
  const weightsAt = src.byteLength;
  const rowAt = weightsAt + weights.byteLength;
  const buffer = memoryOfAtLeast(kernel.memory, rowAt + rowLength * 4);
  const rows = new Float64Array(buffer, 0, src.length);
  rows.set(src);
  new Float64Array(buffer, weightsAt, weights.length).set(weights);
  const row = new Float32Array(buffer, rowAt, rowLength);
  const simdLength = rowLength - (rowLength % 8);
  for (let y = 0; y < outSize; y++) {
    const b = y * stride;
    const n = count[y];
    const first = indices[b];
    if (n === 0) row.fill(0);
    else kernel.mapColumnTaps(rowAt, first * rowLength * 8, simdLength, weightsAt + b * 8, n, rowLength);
    for (let i = simdLength; i < rowLength; i++) {
      let acc = 0;
      for (let k = 0; k < n; k++) acc = acc + weights[b + k] * rows[(first + k) * rowLength + i];
      row[i] = acc;
    }
    dst.set(row, y * rowLength);
  }
}

/** acc += the `g` (1..4) taps from slot `at` on, added in order. */
function addTaps(acc: Float64Array, src: NumericArray, rowLength: number, indices: Int32Array, weights: Float64Array, at: number, g: number): void {
  const w0 = weights[at];
  const s0 = indices[at] * rowLength;
  if (g === 1) {
    for (let i = 0; i < rowLength; i++) acc[i] += w0 * src[s0 + i];
    return;
  }
  const w1 = weights[at + 1];
  const s1 = indices[at + 1] * rowLength;
  if (g === 2) {
    for (let i = 0; i < rowLength; i++) acc[i] = acc[i] + w0 * src[s0 + i] + w1 * src[s1 + i];
    return;
  }
  const w2 = weights[at + 2];
  const s2 = indices[at + 2] * rowLength;
  if (g === 3) {
    for (let i = 0; i < rowLength; i++) acc[i] = acc[i] + w0 * src[s0 + i] + w1 * src[s1 + i] + w2 * src[s2 + i];
    return;
  }
  const w3 = weights[at + 3];
  const s3 = indices[at + 3] * rowLength;
  for (let i = 0; i < rowLength; i++) acc[i] = acc[i] + w0 * src[s0 + i] + w1 * src[s1 + i] + w2 * src[s2 + i] + w3 * src[s3 + i];
}
