// Writing .safetensors files (the layout is in safetensors.ts): from tensors in memory, or
// streamed one tensor at a time so a multi-gigabyte checkpoint never sits in memory at once
// (src/dev/random-model.ts). Written beside the target and renamed when complete.
import { writeAtomicSync } from '../../util/atomic-write.ts';
import type { Tensor32 } from '../types.ts';
import { DTYPE_BYTES, elementCount, floatToBf16Bits, floatToHalfBits } from './dtypes.ts';

export type FloatDtype = 'F32' | 'F16' | 'BF16';

/** float32 values to be stored in the given floating dtype. */
export interface EncodableTensor {
  dtype: FloatDtype;
  shape: number[];
  data: Float32Array;
}

/** Already-encoded bytes in any dtype (e.g. I64 position_ids, or to test odd dtypes). */
export interface RawTensor {
  dtype: string;
  shape: number[];
  bytes: Uint8Array;
}

export type WritableTensor = Tensor32 | EncodableTensor | RawTensor;

/** One tensor for the streaming writer: its values are produced only when it is written. */
export interface StreamedTensor {
  name: string;
  dtype: FloatDtype;
  shape: number[];
  produce: () => Float32Array;
}

/** Encodes float32 values to the little-endian bytes of a floating dtype. */
export function encodeFloats(data: Float32Array, dtype: FloatDtype): Uint8Array {
  if (dtype === 'F32') return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const out = new Uint16Array(data.length);
  const convert = dtype === 'F16' ? floatToHalfBits : floatToBf16Bits;
  for (let i = 0; i < data.length; i++) out[i] = convert(data[i]);
  return new Uint8Array(out.buffer);
}

interface PlannedTensor {
  name: string;
  dtype: string;
  shape: number[];
  byteLength: number;
  bytes: () => Uint8Array;
}

function planOf(name: string, t: WritableTensor): PlannedTensor {
  if ('bytes' in t) {
    return { name, dtype: t.dtype, shape: t.shape, byteLength: t.bytes.byteLength, bytes: () => t.bytes };
  }
  const dtype: FloatDtype = 'dtype' in t ? t.dtype : 'F32';
  return {
    name,
    dtype,
    shape: t.shape,
    byteLength: elementCount(t.shape) * DTYPE_BYTES[dtype],
    bytes: () => encodeFloats(t.data, dtype),
  };
}

function writePlanned(file: string, plan: PlannedTensor[], metadata?: Record<string, string>): number {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new Error(`safetensors metadata "${k}" must be a string`);
    }
    header.__metadata__ = metadata;
  }
  let offset = 0;
  for (const t of plan) {
    if (t.name === '__metadata__' || t.name in header) throw new Error(`duplicate or reserved tensor name "${t.name}"`);
    const width = DTYPE_BYTES[t.dtype];
    if (width !== undefined && elementCount(t.shape) * width !== t.byteLength) {
      throw new Error(`tensor "${t.name}": shape [${t.shape.join(', ')}] does not match ${t.byteLength} bytes of ${t.dtype}`);
    }
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.byteLength] };
    offset += t.byteLength;
  }
  // Pad the header with spaces to a multiple of 8 so the data starts aligned (as the reference does).
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) json = Buffer.concat([json, Buffer.alloc(padded - json.length, 0x20)]);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length));

  // Written beside the target and renamed, so an interrupted write never leaves a plausible file.
  writeAtomicSync(file, (out) => {
    out.write(prefix);
    out.write(json);
    for (const t of plan) {
      const bytes = t.bytes();
      if (bytes.byteLength !== t.byteLength) {
        throw new Error(`tensor "${t.name}": produced ${bytes.byteLength} bytes, expected ${t.byteLength}`);
      }
      out.write(bytes);
    }
  });
  return 8 + json.length + offset;
}


/**
 * Writes tensors (in the given order) to a .safetensors file. Plain Tensor32 values are stored
 * as F32. Returns the file size in bytes.
 */
export function writeSafetensors(
  file: string,
  tensors: Record<string, WritableTensor>,
  metadata?: Record<string, string>,
): number {
  return writePlanned(file, Object.entries(tensors).map(([name, t]) => planOf(name, t)), metadata);
}

/**
 * Writes tensors whose values are generated one at a time, so a multi-gigabyte checkpoint never
 * sits in memory at once. Returns the file size in bytes.
 */
export function writeSafetensorsStreamed(
  file: string,
  tensors: StreamedTensor[],
  metadata?: Record<string, string>,
): number {
  return writePlanned(
    file,
    tensors.map((t) => ({
      name: t.name,
      dtype: t.dtype,
      shape: t.shape,
      byteLength: elementCount(t.shape) * DTYPE_BYTES[t.dtype],
      bytes: () => {
        const data = t.produce();
        if (data.length !== elementCount(t.shape)) {
          throw new Error(`tensor "${t.name}": produced ${data.length} values for shape [${t.shape.join(', ')}]`);
        }
        return encodeFloats(data, t.dtype);
      },
    })),
    metadata,
  );
}
