// The colour scale's per-pixel passes over a map as WebAssembly SIMD kernels, assembled by the
// project's assembler (src/util/wasm-asm.ts; no build step). For a float32 value v, the scale
// entry is colormap.ts's scaleIndex: clamp(trunc(float64(v) · 4095 + 0.5), 0, 4095), NaN → 0.
// The product of a float32 and 4095 is exact in float64, so every entry is the one JavaScript
// computes; the kernels are only faster (four values per step):
//   entryRange(src, count, out)            out[0], out[1] = the least and greatest entry
//   paletteIndices(dst, src, count, table) dst[i] = table[entry(src[i])]   (bytes)
//   rgbPixels(dst, src, count, table)      dst[3i..3i+2] = table[4·entry(src[i])..+2]  (RGB bytes;
//                                           one byte past the last pixel is overwritten)
// for `count` float32 values at `src` (a multiple of 4). Addresses are in bytes. entryRangeOf and
// paletteIndicesOf run them on a JavaScript array a slab at a time (the kernel's memory stays
// ~1 MB whatever the map's size), in plain JavaScript where WebAssembly SIMD is unavailable.
import { SCALE_STEPS, scaleIndex } from './colormap.ts';
import { assemble, doWhile, memoryOfAtLeast, op, type Code } from '../util/wasm-asm.ts';

const cat = (...parts: Code[]): Code => parts.flat();
const TOP = SCALE_STEPS - 1;

/** The four entries of the float32x4 at `p` (local), as int32x4 on the stack; `lo`, `hi` are v128 scratch locals. */
function entries4(p: number, lo: number, hi: number): Code {
  const { get, set } = op;
  // value · 4095 + 0.5 in float64, two lanes at a time.
  const scaled = cat(op.vConstF64(TOP), op.f64x2Mul, op.vConstF64(0.5), op.f64x2Add, op.i32x4TruncSatF64x2SZero);
  return cat(
    get(p), op.vLoad(), set(lo),
    get(lo), get(lo), op.vUpperHalf, op.f64x2PromoteLowF32x4, scaled, set(hi),
    get(lo), op.f64x2PromoteLowF32x4, scaled, get(hi), op.vLowHalves,
    op.vConstI32(0), op.i32x4MaxS, op.vConstI32(TOP), op.i32x4MinS,
  );
}

function entryRangeBody(): Code {
  const { get, set, i32 } = op;
  const [src, count, out] = [0, 1, 2];
  const [p, end] = [3, 4];
  const [lo, hi, e, least, most] = [5, 6, 7, 8, 9];
  const step = cat(
    entries4(p, lo, hi), set(e),
    get(least), get(e), op.i32x4MinS, set(least),
    get(most), get(e), op.i32x4MaxS, set(most),
    get(p), i32(16), op.add, set(p),
  );
  // The least and greatest of the four lanes, written as two int32.
  const reduce = (v: number, pick: Code, at: number): Code => {
    const lane = (k: number) => cat(get(v), op.i32x4Lane(k));
    const pair = (a: Code, b: Code) => cat(a, b, a, b, pick, op.select);
    return cat(get(out), pair(pair(lane(0), lane(1)), pair(lane(2), lane(3))), op.i32Store(at));
  };
  return cat(
    op.vConstI32(TOP), set(least), op.vConstI32(0), set(most),
    get(src), set(p),
    get(src), get(count), i32(2), op.shl, op.add, set(end),
    op.block, get(count), op.eqz, op.brIf(0),
    doWhile(step, cat(get(p), get(end), op.ltU)),
    op.end,
    reduce(least, op.ltS, 0),
    reduce(most, op.gtS, 4),
  );
}

/**
 * A pass writing `bytes` per value at dst from each value's table entry: `store(k, d, table, e)`
 * writes lane k of the entries `e` (int32x4) at d + bytes·k.
 */
function tableLookupBody(bytes: number, store: (k: number, d: Code, table: Code, e: Code) => Code): Code {
  const { get, set, i32 } = op;
  const [dst, src, count, table] = [0, 1, 2, 3];
  const [p, d, end] = [4, 5, 6];
  const [lo, hi, e] = [7, 8, 9];
  const step = cat(
    entries4(p, lo, hi), set(e),
    ...[0, 1, 2, 3].map((k) => store(k, get(d), get(table), get(e))),
    get(p), i32(16), op.add, set(p),
    get(d), i32(4 * bytes), op.add, set(d),
  );
  return cat(
    get(src), set(p), get(dst), set(d),
    get(src), get(count), i32(2), op.shl, op.add, set(end),
    op.block, get(count), op.eqz, op.brIf(0),
    doWhile(step, cat(get(p), get(end), op.ltU)),
    op.end,
  );
}

/** One palette byte per value. */
const paletteIndicesBody = () => tableLookupBody(1, (k, d, table, e) => cat(d, table, e, op.i32x4Lane(k), op.add, op.load8U(), op.store8(k)));

/** Three RGB bytes per value: the entry's 4 table bytes (R, G, B, 0) stored as one int32, the next pixel's store overwriting the 4th. */
const rgbPixelsBody = () => tableLookupBody(3, (k, d, table, e) => cat(d, table, e, op.i32x4Lane(k), op.i32(2), op.shl, op.add, op.i32Load(), op.i32Store(3 * k)));

export interface ColourKernel {
  memory: WebAssembly.Memory;
  entryRange(src: number, count: number, out: number): void;
  paletteIndices(dst: number, src: number, count: number, table: number): void;
  rgbPixels(dst: number, src: number, count: number, table: number): void;
}

let compiled: WebAssembly.Module | null | undefined;
let ofThread: ColourKernel | null | undefined;

/** Values copied into the kernel's memory at a time. */
const SLAB = 1 << 18;
// Memory layout: the slab's values, the table (4 bytes per entry), the bytes written (3 per
// value, and one spare), the range.
const TABLE_AT = SLAB * 4;
const OUT_AT = TABLE_AT + 4 * SCALE_STEPS;
const RANGE_AT = OUT_AT + 3 * SLAB + 16;
const MEMORY_BYTES = RANGE_AT + 16;

/**
 * Runs `pass` over `values` a slab at a time in the kernel's memory (each slab a multiple of 4
 * values, copied to address 0; `pass(count, done)` runs the kernel on it, `done` values being
 * before it); returns how many values it covered, the rest (< 4, or all without a kernel) being
 * the caller's. `setUp` fills the table once.
 */
function inSlabs(values: Float32Array, setUp: (kernel: ColourKernel, buffer: ArrayBuffer) => void, pass: (kernel: ColourKernel, buffer: ArrayBuffer, count: number, done: number) => void): number {
  const kernel = colourKernel();
  if (!kernel) return 0;
  const buffer = memoryOfAtLeast(kernel.memory, MEMORY_BYTES);
  const slab = new Float32Array(buffer, 0, SLAB);
  setUp(kernel, buffer);
  let done = 0;
  while (values.length - done >= 4) {
    const count = Math.min(SLAB, (values.length - done) & ~3);
    slab.set(values.subarray(done, done + count));
    pass(kernel, buffer, count, done);
    done += count;
  }
  return done;
}

/** The least and greatest scale entry (scaleIndex) over `values`; [SCALE_STEPS − 1, 0] when empty. */
export function entryRangeOf(values: Float32Array): [number, number] {
  let least = SCALE_STEPS - 1;
  let most = 0;
  const done = inSlabs(values, () => {}, (kernel, buffer, count) => {
    kernel.entryRange(0, count, RANGE_AT);
    const range = new Int32Array(buffer, RANGE_AT, 2);
    least = Math.min(least, range[0]);
    most = Math.max(most, range[1]);
  });
  for (let i = done; i < values.length; i++) {
    const e = scaleIndex(values[i]);
    if (e < least) least = e;
    if (e > most) most = e;
  }
  return [least, most];
}

/** dst[i] = table[scaleIndex(values[i])]: `table` maps each of the SCALE_STEPS entries to a byte. */
export function paletteIndicesOf(values: Float32Array, table: Uint8Array, dst: Uint8Array): void {
  if (table.length !== SCALE_STEPS) throw new RangeError(`the table needs ${SCALE_STEPS} entries, got ${table.length}`);
  const done = inSlabs(
    values,
    (_kernel, buffer) => new Uint8Array(buffer, TABLE_AT, SCALE_STEPS).set(table),
    (kernel, buffer, count, at) => {
      kernel.paletteIndices(OUT_AT, 0, count, TABLE_AT);
      dst.set(new Uint8Array(buffer, OUT_AT, count), at);
    },
  );
  for (let i = done; i < values.length; i++) dst[i] = table[scaleIndex(values[i])];
}

/** dst = the RGB bytes of each value's scale entry: `rgb` holds SCALE_STEPS RGB triples (colormap.ts scaleTable). */
export function rgbPixelsOf(values: Float32Array, rgb: Uint8Array, dst: Uint8Array): void {
  if (rgb.length !== 3 * SCALE_STEPS) throw new RangeError(`the table needs ${SCALE_STEPS} RGB entries, got ${rgb.length} bytes`);
  const done = inSlabs(
    values,
    (_kernel, buffer) => {
      const table = new Uint8Array(buffer, TABLE_AT, 4 * SCALE_STEPS);
      for (let k = 0; k < SCALE_STEPS; k++) table.set(rgb.subarray(3 * k, 3 * k + 3), 4 * k);
    },
    (kernel, buffer, count, at) => {
      kernel.rgbPixels(OUT_AT, 0, count, TABLE_AT);
      dst.set(new Uint8Array(buffer, OUT_AT, 3 * count), 3 * at);
    },
  );
  for (let i = done; i < values.length; i++) {
    const k = scaleIndex(values[i]) * 3;
    dst[3 * i] = rgb[k];
    dst[3 * i + 1] = rgb[k + 1];
    dst[3 * i + 2] = rgb[k + 2];
  }
}

/** This thread's kernels on their own memory; null where WebAssembly SIMD is unavailable (callers use JavaScript). */
export function colourKernel(): ColourKernel | null {
  if (ofThread !== undefined) return ofThread;
  if (compiled === undefined) {
    const bytes = assemble([
      { name: 'entryRange', params: 3, locals: { i32: 2, v128: 5 }, body: entryRangeBody() },
      { name: 'paletteIndices', params: 4, locals: { i32: 3, v128: 3 }, body: paletteIndicesBody() },
      { name: 'rgbPixels', params: 4, locals: { i32: 3, v128: 3 }, body: rgbPixelsBody() },
    ]);
    compiled = WebAssembly.validate(bytes) ? new WebAssembly.Module(bytes) : null;
  }
  if (compiled === null) return (ofThread = null);
  const memory = new WebAssembly.Memory({ initial: 1 });
  const exports = new WebAssembly.Instance(compiled, { env: { memory } }).exports as unknown as Omit<ColourKernel, 'memory'>;
  return (ofThread = { memory, entryRange: exports.entryRange, paletteIndices: exports.paletteIndices, rgbPixels: exports.rgbPixels });
}
