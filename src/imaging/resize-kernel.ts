// The vertical pass of the model-input resize as a WebAssembly SIMD kernel (float64x2), assembled
// here from its bytes (as MuSc's kernels are, src/methods/musc/wasm-asm.ts; no build step):
//   columnTaps(dst, src, length, weights, taps, rowStride)
//     dst[i] = (((0 + w0·src[i]) + w1·src[i + rowStride]) + …)   for i < length (a multiple of 8)
// over `taps` consecutive rows of 8-bit values, each sum in float64 in tap order. WebAssembly
// neither fuses nor reorders float operations, so every value is the one plain JavaScript
// computes with the same order — the kernel is only faster (8 values per step, the 8-bit loads
// widened in registers; plain JavaScript manages ~1 multiply-add per ns here).

type Code = number[];

function uleb(n: number): Code {
  const out: Code = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

function sleb(n: number): Code {
  const out: Code = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) return [...out, b];
    out.push(b | 0x80);
  }
}

const vec = (items: Code[]): Code => [...uleb(items.length), ...items.flat()];
const name = (s: string): Code => vec([...s].map((ch) => [ch.charCodeAt(0)]));
const section = (id: number, body: Code): Code => [id, ...uleb(body.length), ...body];
/** A SIMD instruction (0xfd prefix, LEB128 opcode) with its immediates. */
const simd = (opcode: number, ...imm: number[]): Code => [0xfd, ...uleb(opcode), ...imm];
const memarg = (alignLog2: number, offset = 0): Code => [alignLog2, ...uleb(offset)];

const get = (i: number): Code => [0x20, ...uleb(i)];
const set = (i: number): Code => [0x21, ...uleb(i)];
const tee = (i: number): Code => [0x22, ...uleb(i)];
const i32 = (v: number): Code => [0x41, ...sleb(v)];
const ADD = 0x6a;
const SUB = 0x6b;
const LT_U = 0x49;
const v128Load = (offset = 0) => simd(0x00, ...memarg(4, offset));
const v128Store = (offset = 0) => simd(0x0b, ...memarg(4, offset));
const load8x8U = () => simd(0x02, ...memarg(3));
const load64Splat = () => simd(0x0a, ...memarg(3));
const zero = () => simd(0x0c, ...new Array<number>(16).fill(0));
/** i8x16.shuffle a, a → the upper 8 bytes moved to the lower half. */
const upperHalf = () => simd(0x0d, 8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15);
const extendLowU16 = () => simd(0xa9); // i32x4.extend_low_i16x8_u
const extendHighU16 = () => simd(0xaa); // i32x4.extend_high_i16x8_u
const convertLowU32 = () => simd(0xff); // f64x2.convert_low_i32x4_u
const f64x2Add = () => simd(0xf0);
const f64x2Mul = () => simd(0xf2);

const cat = (...parts: Code[]): Code => parts.flat();
/** `do { body } while (cond)`; cond leaves an i32. */
const doWhile = (body: Code, cond: Code): Code => [0x02, 0x40, 0x03, 0x40, ...body, ...cond, 0x0d, 0, 0x0b, 0x0b];

function columnTapsFunction(): Code {
  const [dst, src, length, weights, taps, rowStride] = [0, 1, 2, 3, 4, 5];
  const [i, p, wp, k] = [6, 7, 8, 9];
  const [a0, a1, a2, a3, w, lo, hi] = [10, 11, 12, 13, 14, 15, 16];
  // acc += w · float64(value lanes): the multiply first, then the add, as JavaScript does.
  const madd = (acc: number, lanes: Code): Code => cat(get(acc), get(w), lanes, convertLowU32(), f64x2Mul(), f64x2Add(), set(acc));
  const tap = cat(
    get(wp), load64Splat(), set(w),
    get(p), load8x8U(), tee(lo), extendHighU16(), set(hi),
    get(lo), extendLowU16(), set(lo),
    madd(a0, get(lo)),
    madd(a1, cat(get(lo), get(lo), upperHalf())),
    madd(a2, get(hi)),
    madd(a3, cat(get(hi), get(hi), upperHalf())),
    get(p), get(rowStride), [ADD], set(p),
    get(wp), i32(8), [ADD], set(wp),
  );
  const chunk = cat(
    zero(), set(a0), zero(), set(a1), zero(), set(a2), zero(), set(a3),
    get(src), get(i), [ADD], set(p),
    get(weights), set(wp),
    get(taps), set(k),
    doWhile(tap, cat(get(k), i32(1), [SUB], tee(k))),
    // dst + 8·i bytes: eight float64 per chunk.
    get(dst), get(i), i32(3), [0x74], [ADD], set(p), // 0x74 = i32.shl
    get(p), get(a0), v128Store(0),
    get(p), get(a1), v128Store(16),
    get(p), get(a2), v128Store(32),
    get(p), get(a3), v128Store(48),
    get(i), i32(8), [ADD], set(i),
  );
  const body = cat(
    i32(0), set(i),
    [0x02, 0x40], get(length), [0x45], [0x0d, 0], // if length == 0: done
    doWhile(chunk, cat(get(i), get(length), [LT_U])),
    [0x0b],
  );
  const locals = vec([[...uleb(4), 0x7f], [...uleb(7), 0x7b]]);
  const code = [...locals, ...body, 0x0b];
  return [...uleb(code.length), ...code];
}

function assemble(): Uint8Array<ArrayBuffer> {
  const type = [0x60, ...vec(new Array<Code>(6).fill([0x7f])), 0];
  return new Uint8Array([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, vec([type])),
    ...section(2, vec([[...name('env'), ...name('memory'), 0x02, 0x00, 0x01]])),
    ...section(3, vec([uleb(0)])),
    ...section(7, vec([[...name('columnTaps'), 0x00, 0]])),
    ...section(10, vec([columnTapsFunction()])),
  ]);
}

export interface ColumnKernel {
  memory: WebAssembly.Memory;
  columnTaps(dst: number, src: number, length: number, weights: number, taps: number, rowStride: number): void;
}

let compiled: WebAssembly.Module | null | undefined;

/** A kernel on its own memory; null where WebAssembly SIMD is unavailable (callers use plain JavaScript). */
export function columnKernel(): ColumnKernel | null {
  if (compiled === undefined) {
    const bytes = assemble();
    compiled = WebAssembly.validate(bytes) ? new WebAssembly.Module(bytes) : null;
  }
  if (compiled === null) return null;
  const memory = new WebAssembly.Memory({ initial: 1 });
  const exports = new WebAssembly.Instance(compiled, { env: { memory } }).exports as unknown as { columnTaps: ColumnKernel['columnTaps'] };
  return { memory, columnTaps: exports.columnTaps };
}
