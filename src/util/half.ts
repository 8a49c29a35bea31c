// IEEE 754 half precision (fp16) packing: reference features are stored at half the bytes of
// float32 (their cosines change by < 1e-3). Node 20 has no Float16Array, hence these loops.

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 → fp16 bits, round to nearest even; overflow → ±Infinity, NaN kept. */
export function toHalfBits(value: number): number {
  f32[0] = value;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rest > mid || (rest === mid && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && half & 1)) half++;
  return sign | half;
}

/** fp16 bits → number. */
export function fromHalfBits(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** Float32 values → fp16 little-endian bytes. */
export function packHalf(values: ArrayLike<number>): Buffer {
  const out = Buffer.alloc(values.length * 2);
  for (let i = 0; i < values.length; i++) out.writeUInt16LE(toHalfBits(values[i]), 2 * i);
  return out;
}

/** fp16 little-endian bytes → Float32Array (into `out` at `offset` when given). */
export function unpackHalf(bytes: Buffer, out = new Float32Array(bytes.length / 2), offset = 0): Float32Array {
  // A lookup table of all 65,536 values makes this one read per value.
  const table = halfTable();
  for (let i = 0; i < bytes.length / 2; i++) out[offset + i] = table[bytes[2 * i] | (bytes[2 * i + 1] << 8)];
  return out;
}

let table: Float32Array | undefined;
function halfTable(): Float32Array {
  if (!table) {
    table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) table[h] = fromHalfBits(h);
  }
  return table;
}
