// Tensor element types of the weight files (safetensors dtype names; the PyTorch reader maps its
// storages to them): bytes per element, and the bit-exact conversions between float32 and
// fp16/bf16, written out rather than relying on Float16Array, which Node 20 lacks.
// Shared by the safetensors reader and writer and the PyTorch checkpoint reader.
import os from 'node:os';

if (os.endianness() !== 'LE') {
  // Typed-array views below assume the host byte order matches the file's little-endian data.
  throw new Error('the weight readers and writers need a little-endian host');
}

/** Bytes per element of every dtype the format defines (decoding support is narrower). */
export const DTYPE_BYTES: Record<string, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, F8_E4M3: 1, F8_E5M2: 1,
  I64: 8, I32: 4, I16: 2, I8: 1, U64: 8, U32: 4, U16: 2, U8: 1, BOOL: 1,
};

/** dtypes that get() converts to float32. */
export const DECODABLE_DTYPES: ReadonlySet<string> = new Set(['F64', 'F32', 'F16', 'BF16', 'I64', 'I32', 'I16', 'I8', 'U8', 'BOOL']);

export function elementCount(shape: number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

let f16Table: Float32Array | undefined;

/** float32 value of every one of the 65536 fp16 bit patterns, built once. */
function halfToFloatTable(): Float32Array {
  if (f16Table) return f16Table;
  const bits = new Uint32Array(65536);
  for (let h = 0; h < 65536; h++) bits[h] = halfBitsToFloatBits(h);
  f16Table = new Float32Array(bits.buffer);
  return f16Table;
}

/** fp16 bits → fp32 bits: normals re-biased, subnormals normalised, inf/nan kept (payload too). */
export function halfBitsToFloatBits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >> 10) & 0x1f;
  let mant = h & 0x3ff;
  if (exp === 0x1f) return (sign | 0x7f800000 | (mant << 13)) >>> 0;
  if (exp !== 0) return (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
  if (mant === 0) return sign >>> 0;
  // Subnormal: value = mant * 2^-24. Shift the leading one into the implicit bit position.
  let e = 113; // exponent bias adjustment: 127 - 15 + 1
  while ((mant & 0x400) === 0) {
    mant <<= 1;
    e--;
  }
  return (sign | (e << 23) | ((mant & 0x3ff) << 13)) >>> 0;
}

const scratch = new DataView(new ArrayBuffer(4));

/** fp32 value → fp16 bits, round to nearest even; overflow → inf, underflow → subnormal/zero. */
export function floatToHalfBits(value: number): number {
  scratch.setFloat32(0, value, true);
  const x = scratch.getUint32(0, true);
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 | (mant >>> 13) : 0); // nan stays nan
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign; // below half the smallest subnormal
    const m = mant | 0x800000; // restore the implicit one
    const shift = 14 - e;
    let half = m >>> shift;
    const rest = m & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rest > halfway || (rest === halfway && (half & 1) === 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (half & 1) === 1)) half++; // may carry into inf: correct
  return sign | half;
}

/** fp32 value → bf16 bits, round to nearest even, nan kept quiet. */
export function floatToBf16Bits(value: number): number {
  scratch.setFloat32(0, value, true);
  const x = scratch.getUint32(0, true);
  if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff) !== 0) return ((x >>> 16) | 0x40) & 0xffff;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Decodes little-endian bytes (a fresh buffer, offset 0) of a decodable dtype to float32. */
export function decodeToFloat32(dtype: string, bytes: Uint8Array, count: number): Float32Array {
  const out = new Float32Array(count);
  switch (dtype) {
    case 'F32':
      out.set(new Float32Array(bytes.buffer, bytes.byteOffset, count));
      return out;
    case 'F16': {
      const table = halfToFloatTable();
      const src = new Uint16Array(bytes.buffer, bytes.byteOffset, count);
      for (let i = 0; i < count; i++) out[i] = table[src[i]];
      return out;
    }
    case 'BF16': {
      // bf16 is the top half of an fp32: shifting the bits is the exact conversion.
      const src = new Uint16Array(bytes.buffer, bytes.byteOffset, count);
      const dst = new Uint32Array(out.buffer);
      for (let i = 0; i < count; i++) dst[i] = src[i] << 16;
      return out;
    }
    default: {
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      for (let i = 0; i < count; i++) out[i] = readScalar(view, dtype, i);
      return out;
    }
  }
}

function readScalar(view: DataView, dtype: string, i: number): number {
  switch (dtype) {
    case 'F64': return view.getFloat64(i * 8, true);
    case 'I64': return Number(view.getBigInt64(i * 8, true));
    case 'I32': return view.getInt32(i * 4, true);
    case 'I16': return view.getInt16(i * 2, true);
    case 'I8': return view.getInt8(i);
    default: return view.getUint8(i); // U8, BOOL
  }
}
