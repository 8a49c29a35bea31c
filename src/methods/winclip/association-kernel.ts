// visual_association_score's inner loops as a WebAssembly SIMD kernel (float64x2), assembled by
// the project's assembler (src/util/wasm-asm.ts; no build step):
//   minDistances8(out, queryT, refs, m, d)
//     for eight unit query rows, stored transposed ([d][8] float64 at queryT), against m unit
//     reference rows ([m][d] float64 at refs): out[r] = (min over j of 1 − Σ_k q[r][k]·ref[j][k]) / 2
// Each row's dot product is summed k = 0, 1, … in float64 (the lanes are rows, never parts of
// one sum), the minimum keeps the earlier distance on ties and NaN as the JavaScript `if (d < b)`
// does, and WebAssembly neither fuses nor reorders float operations: the values are the ones
// scoring.ts's JavaScript loops compute, bit for bit; the kernel is only faster.
import { assemble, doWhile, memoryOfAtLeast, op, type Code } from '../../util/wasm-asm.ts';

const cat = (...parts: Code[]): Code => parts.flat();

function minDistances8Body(): Code {
  const { get, set, tee, i32 } = op;
  const [out, queryT, refs, m, d] = [0, 1, 2, 3, 4];
  const [j, k, rp, qp] = [5, 6, 7, 8];
  const acc = [9, 10, 11, 12];
  const best = [13, 14, 15, 16];
  const w = 17;
  const madd = (a: number, offset: number): Code => cat(get(a), get(qp), op.vLoad(offset), get(w), op.f64x2Mul, op.f64x2Add, set(a));
  const term = cat(
    get(rp), op.vSplat64(), set(w),
    madd(acc[0], 0), madd(acc[1], 16), madd(acc[2], 32), madd(acc[3], 48),
    get(qp), i32(64), op.add, set(qp),
    get(rp), i32(8), op.add, set(rp),
  );
  const keepNearer = (a: number, b: number): Code => cat(get(b), op.vConstF64(1), get(a), op.f64x2Sub, op.f64x2Pmin, set(b));
  const reference = cat(
    op.vZero, set(acc[0]), op.vZero, set(acc[1]), op.vZero, set(acc[2]), op.vZero, set(acc[3]),
    get(queryT), set(qp),
    get(d), set(k),
    doWhile(term, cat(get(k), i32(1), op.sub, tee(k))),
    ...acc.map((a, r) => keepNearer(a, best[r])),
  );
  const half = (b: number, offset: number): Code => cat(get(out), get(b), op.vConstF64(0.5), op.f64x2Mul, op.vStore(offset));
  return cat(
    ...best.map((b) => cat(op.vConstF64(Infinity), set(b))),
    get(refs), set(rp),
    get(m), set(j),
    op.block, get(m), op.eqz, op.brIf(0), get(d), op.eqz, op.brIf(0),
    doWhile(reference, cat(get(j), i32(1), op.sub, tee(j))),
    op.end,
    ...best.map((b, r) => half(b, 16 * r)),
  );
}

interface AssociationKernel {
  memory: WebAssembly.Memory;
  minDistances8(out: number, queryT: number, refs: number, m: number, d: number): void;
}

let compiled: WebAssembly.Module | null | undefined;
let ofThread: AssociationKernel | null | undefined;

/** This thread's kernel on its own memory; null where WebAssembly SIMD is unavailable. */
function associationKernel(): AssociationKernel | null {
  if (ofThread !== undefined) return ofThread;
  if (compiled === undefined) {
    const bytes = assemble([{ name: 'minDistances8', params: 5, locals: { i32: 4, v128: 9 }, body: minDistances8Body() }]);
    compiled = WebAssembly.validate(bytes) ? new WebAssembly.Module(bytes) : null;
  }
  if (compiled === null) return (ofThread = null);
  const memory = new WebAssembly.Memory({ initial: 1 });
  const exports = new WebAssembly.Instance(compiled, { env: { memory } }).exports as unknown as { minDistances8: AssociationKernel['minDistances8'] };
  return (ofThread = { memory, minDistances8: exports.minDistances8 });
}

/** Reference rows up to this size go through the kernel (copied into its memory). */
const MAX_KERNEL_BYTES = 64 << 20;

/**
 * out[i] = (min over reference rows of 1 − q_i·r_j) / 2 for every row of the unit rows `q`
 * ([n, d]) against the unit rows `r` ([m, d]), eight at a time (the last block padded with
 * zero rows, whose results are dropped); returns how many rows it scored: n, or 0 when the
 * kernel is unavailable or `r` is too large (the caller then scores them all).
 */
export function minDistancesInKernel(q: Float64Array, n: number, r: Float64Array, m: number, d: number, out: Float64Array): number {
  if (n === 0 || m === 0 || d === 0 || r.byteLength > MAX_KERNEL_BYTES) return 0;
  const kernel = associationKernel();
  if (!kernel) return 0;
  // Memory: the reference rows, one transposed block of eight query rows, its eight results.
  const blockAt = r.byteLength;
  const outAt = blockAt + 64 * d;
  const buffer = memoryOfAtLeast(kernel.memory, outAt + 64);
  new Float64Array(buffer, 0, r.length).set(r);
  const block = new Float64Array(buffer, blockAt, 8 * d);
  const results = new Float64Array(buffer, outAt, 8);
  for (let first = 0; first < n; first += 8) {
    const rows = Math.min(8, n - first);
    if (rows < 8) block.fill(0);
    for (let row = 0; row < rows; row++) {
      const q0 = (first + row) * d;
      for (let k = 0; k < d; k++) block[8 * k + row] = q[q0 + k];
    }
    kernel.minDistances8(outAt, blockAt, 0, m, d);
    out.set(rows < 8 ? results.subarray(0, rows) : results, first);
  }
  return n;
}
