// A tiny WebAssembly assembler: just the opcodes the project's kernels use (MuSc's scoring, the
// model-input resize, the maps' upsampling and colour scale; core + 128-bit SIMD), so the kernels live as TypeScript with no build step
// and no binary blob. Numbers from the
// WebAssembly 2.0 specification (binary format, SIMD opcodes after the 0xfd prefix).

export type Code = number[];

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
/** A SIMD instruction: the 0xfd prefix, the opcode as LEB128 (two bytes from 0x80 on), its immediates. */
const simd = (op: number, ...imm: number[]): Code => [0xfd, ...uleb(op), ...imm];

export const I32 = 0x7f;
export const F32 = 0x7d;
export const V128 = 0x7b;

/** Instructions; memory offsets are byte offsets, alignment is the natural one. */
export const op = {
  get: (i: number): Code => [0x20, ...uleb(i)],
  set: (i: number): Code => [0x21, ...uleb(i)],
  tee: (i: number): Code => [0x22, ...uleb(i)],
  i32: (v: number): Code => [0x41, ...sleb(v)],
  add: [0x6a],
  sub: [0x6b],
  mul: [0x6c],
  and: [0x71],
  shl: [0x74],
  shrU: [0x76],
  ltU: [0x49],
  ltS: [0x48],
  gtS: [0x4a],
  /** select: the first of two values when the i32 on top is non-zero, else the second. */
  select: [0x1b],
  geS: [0x4e],
  leS: [0x4c],
  call: (index: number): Code => [0x10, ...uleb(index)],
  eqz: [0x45],
  block: [0x02, 0x40],
  loop: [0x03, 0x40],
  end: [0x0b],
  brIf: (depth: number): Code => [0x0d, ...uleb(depth)],
  f32Store: (offset = 0): Code => [0x38, 2, ...uleb(offset)],
  f32Add: [0x92],
  f32Max: [0x97],
  vLoad: (offset = 0): Code => simd(0x00, 4, ...uleb(offset)),
  vStore: (offset = 0): Code => simd(0x0b, 4, ...uleb(offset)),
  vSplat32: (offset = 0): Code => simd(0x09, 2, ...uleb(offset)),
  vConstF32: (v: number): Code => simd(0x0c, ...new Uint8Array(new Float32Array([v, v, v, v]).buffer)),
  vAnd: simd(0x4e),
  vBitselect: simd(0x52),
  f32x4Lane: (lane: number): Code => simd(0x1f, lane),
  f32x4Add: simd(0xe4),
  f32x4Mul: simd(0xe6),
  f32x4Max: simd(0xe9),
  /** The 128-bit zero constant. */
  vZero: simd(0x0c, ...new Array<number>(16).fill(0)),
  /** v128.load64_splat: one 8-byte value into both halves. */
  vSplat64: (offset = 0): Code => simd(0x0a, 3, ...uleb(offset)),
  /** v128.load8x8_u: eight bytes widened to eight u16 lanes. */
  vLoad8x8U: (offset = 0): Code => simd(0x02, 3, ...uleb(offset)),
  /** i8x16.shuffle taking bytes 8–15 of the first operand into both halves (the upper half, low). */
  vUpperHalf: simd(0x0d, 8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15),
  i32x4ExtendLowU16: simd(0xa9),
  i32x4ExtendHighU16: simd(0xaa),
  f64x2ConvertLowU32: simd(0xff),
  f64x2Add: simd(0xf0),
  f64x2Sub: simd(0xf1),
  f64x2Mul: simd(0xf2),
  /** f64x2.pmin(a, b) = b < a ? b : a per lane (a kept on ties and when either is NaN). */
  f64x2Pmin: simd(0xf6),
  /** i32.load8_u and i32.store8 (byte offset, alignment 1). */
  load8U: (offset = 0): Code => [0x2d, 0, ...uleb(offset)],
  store8: (offset = 0): Code => [0x3a, 0, ...uleb(offset)],
  i32Load: (offset = 0): Code => [0x28, 2, ...uleb(offset)],
  i32Store: (offset = 0): Code => [0x36, 2, ...uleb(offset)],
  /** v128.const of two float64 values. */
  vConstF64: (a: number, b = a): Code => simd(0x0c, ...new Uint8Array(new Float64Array([a, b]).buffer)),
  /** v128.const of four int32 values. */
  vConstI32: (v: number): Code => simd(0x0c, ...new Uint8Array(new Int32Array([v, v, v, v]).buffer)),
  /** f64x2.promote_low_f32x4: the two low float32 lanes, exactly, as float64. */
  f64x2PromoteLowF32x4: simd(0x5f),
  /** i32x4.trunc_sat_f64x2_s_zero: toward zero, saturated (NaN → 0), into the two low lanes. */
  i32x4TruncSatF64x2SZero: simd(0xfc),
  i32x4MinS: simd(0xb6),
  i32x4MaxS: simd(0xb8),
  i32x4Lane: (lane: number): Code => simd(0x1b, lane),
  /** f32x4.demote_f64x2_zero: two float64 lanes rounded to the low two float32 lanes (round to nearest). */
  f32x4DemoteF64x2Zero: simd(0x5e),
  /** i8x16.shuffle taking the low 8 bytes of the first operand, then the low 8 of the second. */
  vLowHalves: simd(0x0d, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23),
};

/** `for (;;) { body; if (!(cond)) break }`: body runs at least once; `cond` leaves an i32. */
export function doWhile(body: Code, cond: Code): Code {
  return [...op.block, ...op.loop, ...body, ...cond, ...op.brIf(0), ...op.end, ...op.end];
}

export interface WasmFunction {
  name: string;
  /** Number of i32 parameters (every kernel takes addresses and counts only). */
  params: number;
  locals: { i32?: number; v128?: number; f32?: number };
  body: Code;
}

/** A module importing `env.memory` and exporting `functions`, each of type (i32 × params) → (). */
export function assemble(functions: WasmFunction[]): Uint8Array<ArrayBuffer> {
  const types = functions.map((f) => [0x60, ...vec(new Array<Code>(f.params).fill([I32])), 0]);
  const bodies = functions.map((f) => {
    const decl: Code[] = [];
    if (f.locals.i32) decl.push([...uleb(f.locals.i32), I32]);
    if (f.locals.v128) decl.push([...uleb(f.locals.v128), V128]);
    if (f.locals.f32) decl.push([...uleb(f.locals.f32), F32]);
    const code = [...vec(decl), ...f.body, ...op.end];
    return [...uleb(code.length), ...code];
  });
  return new Uint8Array([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, vec(types)),
    ...section(2, vec([[...name('env'), ...name('memory'), 0x02, 0x00, 0x01]])), // memory, min 1 page
    ...section(3, vec(functions.map((_, i) => uleb(i)))),
    ...section(7, vec(functions.map((f, i) => [...name(f.name), 0x00, ...uleb(i)]))),
    ...section(10, vec(bodies)),
  ]);
}

/** WebAssembly's page size. */
export const WASM_PAGE = 65536;

/** The memory's buffer, grown first (by whole pages, never shrinking) when it holds under `bytes`. */
export function memoryOfAtLeast(memory: WebAssembly.Memory, bytes: number): ArrayBuffer {
  const have = memory.buffer.byteLength;
  if (bytes > have) memory.grow(Math.ceil((bytes - have) / WASM_PAGE));
  return memory.buffer;
}
