// Column passes as WebAssembly SIMD kernels (float64x2), assembled by the project's assembler
// (src/util/wasm-asm.ts, as MuSc's kernels are; no build step):
//   columnTaps(dst, src, length, weights, taps, rowStride)      the model-input resize
//     dst[i] = (((0 + w0·src[i]) + w1·src[i + rowStride]) + …)   float64 out, 8-bit rows in
//   mapColumnTaps(dst, src, length, weights, taps, rowStride)   the anomaly maps' upsampling
//     dst[i] = float32((((0 + w0·src[i]) + w1·src[i + rowStride]) + …))   float64 rows in
// for i < length (a multiple of 8), over `taps` consecutive rows, each sum in float64 in tap
// order (rowStride in values). WebAssembly neither fuses nor reorders float operations, so every
// value is the one plain JavaScript computes with the same order — the kernels are only faster
// (8 values per step; plain JavaScript manages ~1 multiply-add per ns here).

import { assemble, doWhile, op, type Code } from '../util/wasm-asm.ts';

const cat = (...parts: Code[]): Code => parts.flat();

function columnTapsBody(): Code {
  const { get, set, tee, i32 } = op;
  const [dst, src, length, weights, taps, rowStride] = [0, 1, 2, 3, 4, 5];
  const [i, p, wp, k] = [6, 7, 8, 9];
  const [a0, a1, a2, a3, w, lo, hi] = [10, 11, 12, 13, 14, 15, 16];
  // acc += w · float64(value lanes): the multiply first, then the add, as JavaScript does.
  const madd = (acc: number, lanes: Code): Code => cat(get(acc), get(w), lanes, op.f64x2ConvertLowU32, op.f64x2Mul, op.f64x2Add, set(acc));
  const tap = cat(
    get(wp), op.vSplat64(), set(w),
    get(p), op.vLoad8x8U(), tee(lo), op.i32x4ExtendHighU16, set(hi),
    get(lo), op.i32x4ExtendLowU16, set(lo),
    madd(a0, get(lo)),
    madd(a1, cat(get(lo), get(lo), op.vUpperHalf)),
    madd(a2, get(hi)),
    madd(a3, cat(get(hi), get(hi), op.vUpperHalf)),
    get(p), get(rowStride), op.add, set(p),
    get(wp), i32(8), op.add, set(wp),
  );
  const chunk = cat(
    op.vZero, set(a0), op.vZero, set(a1), op.vZero, set(a2), op.vZero, set(a3),
    get(src), get(i), op.add, set(p),
    get(weights), set(wp),
    get(taps), set(k),
    doWhile(tap, cat(get(k), i32(1), op.sub, tee(k))),
    // dst + 8·i bytes: eight float64 per chunk.
    get(dst), get(i), i32(3), op.shl, op.add, set(p),
    get(p), get(a0), op.vStore(0),
    get(p), get(a1), op.vStore(16),
    get(p), get(a2), op.vStore(32),
    get(p), get(a3), op.vStore(48),
    get(i), i32(8), op.add, set(i),
  );
  return cat(
    i32(0), set(i),
    op.block, get(length), op.eqz, op.brIf(0), // if length == 0: done
    doWhile(chunk, cat(get(i), get(length), op.ltU)),
    op.end,
  );
}

/** mapColumnTaps: float64 rows in, float32 sums out; addresses in bytes, rowStride in values. */
function mapColumnTapsBody(): Code {
  const { get, set, tee, i32 } = op;
  const [dst, src, length, weights, taps, rowStride] = [0, 1, 2, 3, 4, 5];
  const [i, p, wp, k, rowBytes] = [6, 7, 8, 9, 10];
  const [a0, a1, a2, a3, w] = [11, 12, 13, 14, 15];
  const madd = (acc: number, offset: number): Code => cat(get(acc), get(w), get(p), op.vLoad(offset), op.f64x2Mul, op.f64x2Add, set(acc));
  const tap = cat(
    get(wp), op.vSplat64(), set(w),
    madd(a0, 0), madd(a1, 16), madd(a2, 32), madd(a3, 48),
    get(p), get(rowBytes), op.add, set(p),
    get(wp), i32(8), op.add, set(wp),
  );
  // Four float32 from two float64x2 accumulators.
  const demoted = (lo: number, hi: number): Code => cat(get(lo), op.f32x4DemoteF64x2Zero, get(hi), op.f32x4DemoteF64x2Zero, op.vLowHalves);
  const chunk = cat(
    op.vZero, set(a0), op.vZero, set(a1), op.vZero, set(a2), op.vZero, set(a3),
    // src + 8·i bytes
    get(src), get(i), i32(3), op.shl, op.add, set(p),
    get(weights), set(wp),
    get(taps), set(k),
    doWhile(tap, cat(get(k), i32(1), op.sub, tee(k))),
    // dst + 4·i bytes: eight float32 per chunk.
    get(dst), get(i), i32(2), op.shl, op.add, set(p),
    get(p), demoted(a0, a1), op.vStore(0),
    get(p), demoted(a2, a3), op.vStore(16),
    get(i), i32(8), op.add, set(i),
  );
  return cat(
    get(rowStride), i32(3), op.shl, set(rowBytes),
    i32(0), set(i),
    op.block, get(length), op.eqz, op.brIf(0),
    op.block, get(taps), op.eqz, op.brIf(0),
    doWhile(chunk, cat(get(i), get(length), op.ltU)),
    op.end,
    op.end,
  );
}

export interface ColumnKernel {
  memory: WebAssembly.Memory;
  columnTaps(dst: number, src: number, length: number, weights: number, taps: number, rowStride: number): void;
  mapColumnTaps(dst: number, src: number, length: number, weights: number, taps: number, rowStride: number): void;
}

let compiled: WebAssembly.Module | null | undefined;

/** A kernel on its own memory; null where WebAssembly SIMD is unavailable (callers use plain JavaScript). */
export function columnKernel(): ColumnKernel | null {
  if (compiled === undefined) {
    const bytes = assemble([
      { name: 'columnTaps', params: 6, locals: { i32: 4, v128: 7 }, body: columnTapsBody() },
      { name: 'mapColumnTaps', params: 6, locals: { i32: 5, v128: 5 }, body: mapColumnTapsBody() },
    ]);
    compiled = WebAssembly.validate(bytes) ? new WebAssembly.Module(bytes) : null;
  }
  if (compiled === null) return null;
  const memory = new WebAssembly.Memory({ initial: 1 });
  const exports = new WebAssembly.Instance(compiled, { env: { memory } }).exports as unknown as Omit<ColumnKernel, 'memory'>;
  return { memory, columnTaps: exports.columnTaps, mapColumnTaps: exports.mapColumnTaps };
}

let kernelOfThread: ColumnKernel | null | undefined;

/** This thread's kernel instance (compiled once, its memory grown to the largest call seen). */
export function threadKernel(): ColumnKernel | null {
  if (kernelOfThread === undefined) kernelOfThread = columnKernel();
  return kernelOfThread;
}
