// The dot-product matmul of MSM: G = A·Bᵀ for two images' [L, C] float32 patch features, as a
// small WebAssembly SIMD kernel assembled here from its opcodes (no build step, no native code).
// Plain JavaScript does about 0.7·10⁹ multiply-adds/s on this machine; the 128-bit SIMD kernel
// does 10–12·10⁹ per core, which is what makes MuSc affordable on a CPU.
//
// Layout: each image's features are packed into panels of 8 patches, [⌈L/8⌉][C][8] float32
// (patches past L are zero). The kernel computes a 4×8 tile of G per step: 8 accumulators of
// f32x4, per channel one broadcast of each of 4 A values and two 4-wide loads of B. Each G entry
// is one float32 sum over c = 0…C−1 in channel order whatever the tile, band or thread, and
// WebAssembly forbids fusing mul+add, so G[p][q] = G'[q][p] bit for bit: the results do not
// depend on blocking, chunking or which image is A.

const I32 = 0x7f;
const V128 = 0x7b;

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) return [...out, b];
    out.push(b | 0x80);
  }
}

const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
const name = (s: string): number[] => vec([...s].map((ch) => [ch.charCodeAt(0)]));
const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];
const simd = (op: number, ...imm: number[]): number[] => [0xfd, ...uleb(op), ...imm];

// The instructions the kernel uses (WebAssembly core + SIMD opcode numbers).
const get = (i: number) => [0x20, ...uleb(i)];
const set = (i: number) => [0x21, ...uleb(i)];
const tee = (i: number) => [0x22, ...uleb(i)];
const i32 = (v: number) => [0x41, ...sleb(v)];
const [ADD, MUL, SHR_U, AND, LT_U] = [[0x6a], [0x6c], [0x76], [0x71], [0x49]];
const SUB = [0x6b];
const LOOP = [0x03, 0x40];
const BLOCK = [0x02, 0x40];
const END = [0x0b];
const brIf = (depth: number) => [0x0d, ...uleb(depth)];
const vLoad = (offset: number) => simd(0x00, 4, ...uleb(offset));
const vStore = (offset: number) => simd(0x0b, 4, ...uleb(offset));
const splat32 = (offset: number) => simd(0x09, 2, ...uleb(offset));
const V_ZERO = simd(0x0c, ...new Array<number>(16).fill(0));
const F32X4_ADD = simd(228);
const F32X4_MUL = simd(230);

/**
 * gram(aBase, pb0, pb1, bBase, qBlocks, C, gBase, ldg): for 4-row blocks pb ∈ [pb0, pb1) of A
 * and 8-column blocks qb ∈ [0, qBlocks) of B, G[4(pb−pb0)+r][8qb+k] = Σ_c A[4pb+r][c]·B[8qb+k][c]
 * with G rows ldg bytes apart. All arguments are byte addresses or counts.
 */
function kernelBody(): number[] {
  const [aBase, pb0, pb1, bBase, qBlocks, C, gBase, ldg] = [0, 1, 2, 3, 4, 5, 6, 7];
  const [qb, pb, c, ap, bp, gp] = [8, 9, 10, 11, 12, 13];
  const [b0, b1, a] = [14, 15, 16];
  const acc = (k: number) => 17 + k;
  const code: number[] = [];
  const emit = (...parts: number[][]) => {
    for (const p of parts) code.push(...p);
  };
  emit(i32(0), set(qb), BLOCK, LOOP);
  {
    emit(get(pb0), set(pb), BLOCK, LOOP);
    {
      for (let k = 0; k < 8; k++) emit(V_ZERO, set(acc(k)));
      // ap = aBase + (pb >> 1)·C·32 + (pb & 1)·16: the upper or lower half of an 8-panel.
      emit(get(aBase), get(pb), i32(1), SHR_U, get(C), MUL, i32(32), MUL, ADD);
      emit(get(pb), i32(1), AND, i32(16), MUL, ADD, set(ap));
      emit(get(bBase), get(qb), get(C), MUL, i32(32), MUL, ADD, set(bp));
      emit(get(C), set(c), BLOCK, LOOP);
      {
        emit(get(bp), vLoad(0), set(b0), get(bp), vLoad(16), set(b1));
        for (let r = 0; r < 4; r++) {
          emit(get(ap), splat32(4 * r), set(a));
          emit(get(acc(2 * r)), get(a), get(b0), F32X4_MUL, F32X4_ADD, set(acc(2 * r)));
          emit(get(acc(2 * r + 1)), get(a), get(b1), F32X4_MUL, F32X4_ADD, set(acc(2 * r + 1)));
        }
        emit(get(ap), i32(32), ADD, set(ap), get(bp), i32(32), ADD, set(bp));
        emit(get(c), i32(1), SUB, tee(c), brIf(0));
      }
      emit(END, END);
      emit(get(gBase), get(pb), get(pb0), SUB, i32(4), MUL, get(ldg), MUL, ADD, get(qb), i32(32), MUL, ADD, set(gp));
      for (let r = 0; r < 4; r++) {
        emit(get(gp), get(acc(2 * r)), vStore(0), get(gp), get(acc(2 * r + 1)), vStore(16));
        emit(get(gp), get(ldg), ADD, set(gp));
      }
      emit(get(pb), i32(1), ADD, tee(pb), get(pb1), LT_U, brIf(0));
    }
    emit(END, END);
    emit(get(qb), i32(1), ADD, tee(qb), get(qBlocks), LT_U, brIf(0));
  }
  emit(END, END, END);
  return [...vec([[...uleb(6), I32], [...uleb(11), V128]]), ...code];
}

function kernelModule(): Uint8Array<ArrayBuffer> {
  const body = kernelBody();
  return new Uint8Array([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, vec([[0x60, ...vec(new Array(8).fill([I32])), 0]])), // type: (i32 ×8) → ()
    ...section(2, vec([[...name('env'), ...name('memory'), 0x02, 0x00, 0x01]])), // import memory, min 1 page
    ...section(3, vec([[0]])),
    ...section(7, vec([[...name('gram'), 0x00, 0]])),
    ...section(10, vec([[...uleb(body.length), ...body]])),
  ]);
}

let compiled: WebAssembly.Module | undefined;
function gramModule(): WebAssembly.Module {
  if (!compiled) {
    const bytes = kernelModule();
    if (!WebAssembly.validate(bytes)) throw new Error('this runtime lacks WebAssembly SIMD, which the MuSc kernel needs');
    compiled = new WebAssembly.Module(bytes);
  }
  return compiled;
}

const PAGE = 65536;
type GramFn = (aBase: number, pb0: number, pb1: number, bBase: number, qBlocks: number, c: number, gBase: number, ldg: number) => void;

/** One block of G rows: row p of the block is data[(p − firstRow)·stride + q]. */
export interface GramBlock {
  data: Float32Array;
  firstRow: number;
  stride: number;
}

/**
 * A Gram-matrix engine holding one layer's features of a batch in its own WebAssembly memory
 * (one per thread). Memory: 4·N·⌈L/8⌉·8·C bytes of panels + 4·⌈L/8⌉²·64 bytes of G.
 */
export class GramKernel {
  private readonly memory = new WebAssembly.Memory({ initial: 1 });
  private readonly gram: GramFn;
  private f32 = new Float32Array(this.memory.buffer);
  private images = 0;
  private patches = 0;
  private channels = 0;
  private padded = 0;
  private gBase = 0;

  constructor() {
    const instance = new WebAssembly.Instance(gramModule(), { env: { memory: this.memory } });
    this.gram = instance.exports.gram as GramFn;
  }

  /** Packs `images` feature maps [L, C] (given by `features(i)`) into panels; replaces the previous load. */
  load(features: (image: number) => Float32Array, images: number, patches: number, channels: number): void {
    const padded = Math.ceil(patches / 8) * 8;
    const panelFloats = padded * channels;
    const gFloats = padded * padded;
    const bytes = 4 * (images * panelFloats + gFloats);
    if (bytes > this.memory.buffer.byteLength) {
      this.memory.grow(Math.ceil((bytes - this.memory.buffer.byteLength) / PAGE));
      this.f32 = new Float32Array(this.memory.buffer);
    }
    this.images = images;
    this.patches = patches;
    this.channels = channels;
    this.padded = padded;
    this.gBase = 4 * images * panelFloats;
    const f = this.f32;
    for (let i = 0; i < images; i++) {
      const x = features(i);
      if (x.length !== patches * channels) throw new RangeError(`image ${i} has ${x.length} values, expected ${patches}·${channels}`);
      const base = i * panelFloats;
      f.fill(0, base + (padded - 8) * channels, base + panelFloats); // the last panel's padding lanes
      for (let p = 0; p < patches; p++) {
        const o = base + (p >> 3) * channels * 8 + (p & 7);
        for (let c = 0, s = p * channels; c < channels; c++) f[o + 8 * c] = x[s + c];
      }
    }
  }

  /**
   * Rows [from, to) of G = X_a·X_bᵀ (rounded out to multiples of 4), all ⌈L/8⌉·8 columns;
   * entries for q ≥ L are 0. The view is valid until the next call.
   */
  rows(a: number, b: number, from: number, to: number): GramBlock {
    if (!(a >= 0 && a < this.images && b >= 0 && b < this.images)) throw new RangeError(`image index out of range: ${a}, ${b}`);
    if (!(from >= 0 && from < to && to <= this.patches)) throw new RangeError(`rows [${from}, ${to}) outside [0, ${this.patches})`);
    const pb0 = from >> 2;
    const pb1 = (to + 3) >> 2;
    const panelBytes = 4 * this.padded * this.channels;
    this.gram(a * panelBytes, pb0, pb1, b * panelBytes, this.padded / 8, this.channels, this.gBase, 4 * this.padded);
    const rows = 4 * (pb1 - pb0);
    return { data: this.f32.subarray(this.gBase / 4, this.gBase / 4 + rows * this.padded), firstRow: 4 * pb0, stride: this.padded };
  }
}
