// MuSc's WebAssembly SIMD kernels (assembled by wasm-asm.ts), all on float32:
//   gram            G = A·Bᵀ on 8-patch panels, a 4×8 tile of G per step (the matmul of MSM)
//   add             dst[i] += src[i]                                  (box sums over A's grid)
//   addShiftMasked  dst[row][q] += src[row][q + shift] & mask[q]      (box sums over B's grid)
//   cosMax          c = s·(ia[row]·ib[q]) → rowMax[row] = max_q c, colMax[q] = max(colMax[q], c)
//   rowSquares      out[row] = Σ_c src[row][c]²                       (norms of the LNAMD sums)
//   foldRow         one row of G's box sums over A's grid y and B's grid x, y, then cosMax, in
//                   two row buffers that stay in L1 (calls add, addShiftMasked, zero, cosMax)
// Every output element is produced by one fixed sequence of float32 operations, and
// WebAssembly forbids fusing or reordering them, so results are the same bit for bit on any
// machine and for any blocking. Plain JavaScript does ~0.7·10⁹ multiply-adds/s here; gram does
// 10–12·10⁹ per core.
import { assemble, doWhile, op, type Code, type WasmFunction } from '../../util/wasm-asm.ts';

const { get, set, tee, i32 } = op;
const cat = (...parts: Code[]): Code => parts.flat();
/** local += bytes */
const bump = (local: number, bytes: number | Code): Code =>
  cat(get(local), typeof bytes === 'number' ? i32(bytes) : bytes, op.add, set(local));
/** --local != 0 (the loop condition of a count-down) */
const countDown = (local: number): Code => cat(get(local), i32(1), op.sub, tee(local));

/** gram(aBase, pb0, pb1, bBase, qBlocks, C, gBase, ldg): G[4(pb−pb0)+r][8qb+k] = Σ_c A[4pb+r][c]·B[8qb+k][c]. */
function gram(): WasmFunction {
  const [aBase, pb0, pb1, bBase, qBlocks, C, gBase, ldg] = [0, 1, 2, 3, 4, 5, 6, 7];
  const [qb, pb, c, ap, bp, gp] = [8, 9, 10, 11, 12, 13];
  const [b0, b1, a] = [14, 15, 16];
  const acc = (k: number) => 17 + k;
  const zero = cat(...Array.from({ length: 8 }, (_, k) => cat(op.vConstF32(0), set(acc(k)))));
  // One channel: two 4-wide loads of B, four broadcasts of A, eight multiply-adds.
  const channel = cat(get(bp), op.vLoad(0), set(b0), get(bp), op.vLoad(16), set(b1));
  const madds = Array.from({ length: 4 }, (_, r) =>
    cat(
      get(ap), op.vSplat32(4 * r), set(a),
      get(acc(2 * r)), get(a), get(b0), op.f32x4Mul, op.f32x4Add, set(acc(2 * r)),
      get(acc(2 * r + 1)), get(a), get(b1), op.f32x4Mul, op.f32x4Add, set(acc(2 * r + 1)),
    ),
  );
  const stores = Array.from({ length: 4 }, (_, r) =>
    cat(get(gp), get(acc(2 * r)), op.vStore(0), get(gp), get(acc(2 * r + 1)), op.vStore(16), bump(gp, get(ldg))),
  );
  const tile = cat(
    zero,
    // ap = aBase + (pb >> 1)·C·32 + (pb & 1)·16: the upper or lower half of an 8-panel.
    get(aBase), get(pb), i32(1), op.shrU, get(C), op.mul, i32(32), op.mul, op.add,
    get(pb), i32(1), op.and, i32(16), op.mul, op.add, set(ap),
    get(bBase), get(qb), get(C), op.mul, i32(32), op.mul, op.add, set(bp),
    get(C), set(c),
    doWhile(cat(channel, ...madds, bump(ap, 32), bump(bp, 32)), countDown(c)),
    get(gBase), get(pb), get(pb0), op.sub, i32(4), op.mul, get(ldg), op.mul, op.add,
    get(qb), i32(32), op.mul, op.add, set(gp),
    ...stores,
  );
  const body = cat(
    i32(0), set(qb),
    doWhile(
      cat(get(pb0), set(pb), doWhile(tile, cat(get(pb), i32(1), op.add, tee(pb), get(pb1), op.ltU))),
      cat(get(qb), i32(1), op.add, tee(qb), get(qBlocks), op.ltU),
    ),
  );
  return { name: 'gram', params: 8, locals: { i32: 6, v128: 11 }, body };
}

/** add(dst, src, n): dst[i] += src[i] for n floats (a multiple of 4; 0 does nothing). */
function add(): WasmFunction {
  const [dst, src, n, end] = [0, 1, 2, 3];
  const body = cat(
    op.block, get(n), op.eqz, op.brIf(0),
    get(dst), get(n), i32(4), op.mul, op.add, set(end),
    doWhile(
      cat(get(dst), get(dst), op.vLoad(), get(src), op.vLoad(), op.f32x4Add, op.vStore(), bump(dst, 16), bump(src, 16)),
      cat(get(dst), get(end), op.ltU),
    ),
    op.end,
  );
  return { name: 'add', params: 3, locals: { i32: 1 }, body };
}

/** addShiftMasked(dst, src, mask, rows, stride, shift): rows ≥ 1 rows of `stride` floats (a multiple of 4). */
function addShiftMasked(): WasmFunction {
  const [dst, src, mask, rows, stride, shift] = [0, 1, 2, 3, 4, 5];
  const [m, rowEnd] = [6, 7];
  const step = cat(
    get(dst), get(dst), op.vLoad(), get(src), op.vLoad(), get(m), op.vLoad(), op.vAnd, op.f32x4Add, op.vStore(),
    bump(dst, 16), bump(src, 16), bump(m, 16),
  );
  const row = cat(get(mask), set(m), get(dst), get(stride), i32(4), op.mul, op.add, set(rowEnd), doWhile(step, cat(get(dst), get(rowEnd), op.ltU)));
  const body = cat(bump(src, cat(get(shift), i32(4), op.mul)), doWhile(row, countDown(rows)));
  return { name: 'addShiftMasked', params: 6, locals: { i32: 2 }, body };
}

/**
 * cosMax(s, rows, stride, ia, ib, valid, rowMax, colMax): for rows ≥ 1 rows of `stride` floats,
 * c = s[row][q]·(ia[row]·ib[q]), −∞ where valid[q] = 0; rowMax[row] = max_q c; colMax[q] max= c.
 */
function cosMax(): WasmFunction {
  const [s, rows, stride, ia, ib, valid, rowMax, colMax] = [0, 1, 2, 3, 4, 5, 6, 7];
  const [pb, pv, pc, rowEnd] = [8, 9, 10, 11];
  const [a, best, c] = [12, 13, 14];
  const step = cat(
    get(s), op.vLoad(), get(a), get(pb), op.vLoad(), op.f32x4Mul, op.f32x4Mul,
    op.vConstF32(-Infinity), get(pv), op.vLoad(), op.vBitselect, set(c),
    get(pc), get(pc), op.vLoad(), get(c), op.f32x4Max, op.vStore(),
    get(best), get(c), op.f32x4Max, set(best),
    bump(s, 16), bump(pb, 16), bump(pv, 16), bump(pc, 16),
  );
  const lane = (k: number) => cat(get(best), op.f32x4Lane(k));
  const row = cat(
    get(ia), op.vSplat32(), set(a), op.vConstF32(-Infinity), set(best),
    get(ib), set(pb), get(valid), set(pv), get(colMax), set(pc),
    get(s), get(stride), i32(4), op.mul, op.add, set(rowEnd),
    doWhile(step, cat(get(s), get(rowEnd), op.ltU)),
    get(rowMax), lane(0), lane(1), op.f32Max, lane(2), lane(3), op.f32Max, op.f32Max, op.f32Store(),
    bump(rowMax, 4), bump(ia, 4),
  );
  return { name: 'cosMax', params: 8, locals: { i32: 4, v128: 3 }, body: doWhile(row, countDown(rows)) };
}

/** rowSquares(src, rows, stride, out): rows ≥ 1 rows of `stride` floats (a multiple of 4, ≥ 4). */
function rowSquares(): WasmFunction {
  const [src, rows, stride, out] = [0, 1, 2, 3];
  const [rowEnd] = [4];
  const [acc, v] = [5, 6];
  const lane = (k: number) => cat(get(acc), op.f32x4Lane(k));
  const step = cat(get(src), op.vLoad(), set(v), get(acc), get(v), get(v), op.f32x4Mul, op.f32x4Add, set(acc), bump(src, 16));
  const row = cat(
    op.vConstF32(0), set(acc),
    get(src), get(stride), i32(4), op.mul, op.add, set(rowEnd),
    doWhile(step, cat(get(src), get(rowEnd), op.ltU)),
    get(out), lane(0), lane(1), op.f32Add, lane(2), lane(3), op.f32Add, op.f32Add, op.f32Store(),
    bump(out, 4),
  );
  return { name: 'rowSquares', params: 4, locals: { i32: 1, v128: 2 }, body: doWhile(row, countDown(rows)) };
}

/** zero(dst, n): n floats (a multiple of 4, ≥ 4) set to 0. */
function zero(): WasmFunction {
  const [dst, n, end] = [0, 1, 2];
  const body = cat(
    get(dst), get(n), i32(4), op.mul, op.add, set(end),
    doWhile(cat(get(dst), op.vConstF32(0), op.vStore(), bump(dst, 16)), cat(get(dst), get(end), op.ltU)),
  );
  return { name: 'zero', params: 2, locals: { i32: 1 }, body };
}

/** The module's functions in order; `call` takes an index into this list. */
const NAMES = ['gram', 'add', 'addShiftMasked', 'cosMax', 'rowSquares', 'zero', 'foldRow'] as const;
const call = (name: (typeof NAMES)[number]): Code => op.call(NAMES.indexOf(name));

/**
 * foldRow(pxRow, y, h, w, rho, stride, maskX0, maskY0, rowA, rowB, ia, ib, valid, rowMax, colMax)
 * for the A patch whose x-box-summed G row is at pxRow, at grid row y of A:
 *   rowA = Σ_{dy: 0 ≤ y+dy < h} pxRow[+dy·w rows]           (A's grid, y)
 *   rowB = Σ_{dx} rowA[q + dx] & maskX(dx)                   (B's grid, x; maskX(−rho) at maskX0)
 *   rowA = Σ_{dy} rowB[q + dy·w] & maskY(dy)                 (B's grid, y; maskY(−rho) at maskY0)
 *   cosMax(rowA, 1 row, …)
 * offsets ascending and each sum started from 0, exactly as separate whole-band passes would.
 */
function foldRow(): WasmFunction {
  const [pxRow, y, h, w, rho, stride, maskX0, maskY0, rowA, rowB, ia, ib, valid, rowMax, colMax] = Array.from({ length: 15 }, (_, i) => i);
  const [t, yy] = [15, 16];
  const rowBytes = cat(get(stride), i32(4), op.mul);
  /** for (t = 0; t <= 2·rho; t++) body — d = t − rho */
  const overOffsets = (body: Code) => cat(i32(0), set(t), doWhile(cat(body, bump(t, 1)), cat(get(t), get(rho), i32(2), op.mul, op.leS)));
  const d = cat(get(t), get(rho), op.sub);
  const body = cat(
    get(rowA), get(stride), call('zero'),
    overOffsets(
      cat(
        d, get(y), op.add, set(yy),
        op.block, get(yy), i32(0), op.ltS, op.brIf(0), get(yy), get(h), op.geS, op.brIf(0),
        get(rowA), get(pxRow), d, get(w), op.mul, rowBytes, op.mul, op.add, get(stride), call('add'),
        op.end,
      ),
    ),
    get(rowB), get(stride), call('zero'),
    overOffsets(cat(get(rowB), get(rowA), get(maskX0), get(t), rowBytes, op.mul, op.add, i32(1), get(stride), d, call('addShiftMasked'))),
    get(rowA), get(stride), call('zero'),
    overOffsets(cat(get(rowA), get(rowB), get(maskY0), get(t), rowBytes, op.mul, op.add, i32(1), get(stride), d, get(w), op.mul, call('addShiftMasked'))),
    get(rowA), i32(1), get(stride), get(ia), get(ib), get(valid), get(rowMax), get(colMax), call('cosMax'),
  );
  return { name: 'foldRow', params: 15, locals: { i32: 2 }, body };
}

export interface Kernels {
  gram(aBase: number, pb0: number, pb1: number, bBase: number, qBlocks: number, channels: number, gBase: number, ldg: number): void;
  add(dst: number, src: number, n: number): void;
  addShiftMasked(dst: number, src: number, mask: number, rows: number, stride: number, shift: number): void;
  cosMax(s: number, rows: number, stride: number, ia: number, ib: number, valid: number, rowMax: number, colMax: number): void;
  rowSquares(src: number, rows: number, stride: number, out: number): void;
  foldRow(
    pxRow: number, y: number, h: number, w: number, rho: number, stride: number, maskX0: number, maskY0: number,
    rowA: number, rowB: number, ia: number, ib: number, valid: number, rowMax: number, colMax: number,
  ): void;
}

let compiled: WebAssembly.Module | undefined;

/** The kernels on `memory` (all arguments are byte addresses into it, or counts). */
export function instantiateKernels(memory: WebAssembly.Memory): Kernels {
  if (!compiled) {
    const built: Record<(typeof NAMES)[number], () => WasmFunction> = { gram, add, addShiftMasked, cosMax, rowSquares, zero, foldRow };
    const bytes = assemble(NAMES.map((n) => built[n]()));
    if (!WebAssembly.validate(bytes)) throw new Error('this runtime lacks WebAssembly SIMD, which the MuSc kernels need');
    compiled = new WebAssembly.Module(bytes);
  }
  return new WebAssembly.Instance(compiled, { env: { memory } }).exports as unknown as Kernels;
}
