// Reading and writing .safetensors files: an 8-byte little-endian header length, a JSON header
// mapping tensor names to {dtype, shape, data_offsets}, then the raw little-endian data.
// Tensors are decoded lazily, one positioned read per tensor, so a 600 MB checkpoint is never
// held twice in memory (F32 data is read straight into the returned Float32Array).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeAtomicSync } from '../../util/atomic-write.ts';
import type { Tensor32 } from '../types.ts';

/** Bytes per element of every dtype the format defines (decoding support is narrower). */
const DTYPE_BYTES: Record<string, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, F8_E4M3: 1, F8_E5M2: 1,
  I64: 8, I32: 4, I16: 2, I8: 1, U64: 8, U32: 4, U16: 2, U8: 1, BOOL: 1,
};

/** dtypes that get() converts to float32. */
export const DECODABLE_DTYPES: ReadonlySet<string> = new Set(['F64', 'F32', 'F16', 'BF16', 'I64', 'I32', 'I16', 'I8', 'U8', 'BOOL']);

/** The reference implementation refuses headers above 100 MB; so do we (guards against garbage). */
const MAX_HEADER_BYTES = 100_000_000;

if (os.endianness() !== 'LE') {
  // Typed-array views below assume the host byte order matches the file's little-endian data.
  throw new Error('safetensors.ts needs a little-endian host');
}

export interface TensorInfo {
  dtype: string;
  shape: number[];
  /** Absolute byte range [begin, end) of the tensor's data within the file. */
  begin: number;
  end: number;
}

/** A name → tensor lookup over one file or a set of shards. */
export interface TensorSource {
  /** The files behind this source (one, or every shard). */
  readonly files: string[];
  names(): string[];
  has(name: string): boolean;
  shape(name: string): number[];
  dtype(name: string): string;
  /** Decodes the tensor to float32 (reads it from disk on each call). */
  get(name: string): Tensor32;
  /** Where a tensor lives, for error messages. */
  fileOf(name: string): string;
  metadata(): Record<string, string>;
  close(): void;
}

function elementCount(shape: number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

// ---------------------------------------------------------------------------------------------
// Half-precision conversions (bit-exact; written out rather than relying on Float16Array,
// which Node 20 lacks).

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

// ---------------------------------------------------------------------------------------------
// Reader

/** Fills `target` from `fd` at `position`; a short file is an error naming `file`. */
export function readFully(fd: number, target: Uint8Array, position: number, file: string): void {
  let done = 0;
  while (done < target.byteLength) {
    // readSync caps one call at ~2 GB, so loop.
    const chunk = Math.min(target.byteLength - done, 1 << 30);
    const n = fs.readSync(fd, target, done, chunk, position + done);
    if (n === 0) throw new Error(`${file}: unexpected end of file at byte ${position + done}`);
    done += n;
  }
}

function isNonNegInt(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}

/** Parses and validates a header against the file size; throws with the file path on any fault. */
export function parseSafetensorsHeader(
  headerBytes: Uint8Array,
  dataStart: number,
  fileSize: number,
  file: string,
): { tensors: Map<string, TensorInfo>; metadata: Record<string, string> } {
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBytes));
  } catch (e) {
    throw new Error(`${file}: safetensors header is not valid JSON (${(e as Error).message})`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) {
    throw new Error(`${file}: safetensors header is not a JSON object`);
  }
  const tensors = new Map<string, TensorInfo>();
  let metadata: Record<string, string> = {};
  const dataBytes = fileSize - dataStart;
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (raw && typeof raw === 'object') metadata = raw as Record<string, string>;
      continue;
    }
    const entry = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown } | null;
    const dtype = entry?.dtype;
    const shape = entry?.shape;
    const offsets = entry?.data_offsets;
    if (typeof dtype !== 'string' || !Array.isArray(shape) || !shape.every(isNonNegInt)) {
      throw new Error(`${file}: tensor "${name}" has a malformed header entry ${JSON.stringify(raw)}`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isNonNegInt) || offsets[0] > offsets[1]) {
      throw new Error(`${file}: tensor "${name}" has malformed data_offsets ${JSON.stringify(offsets)}`);
    }
    const [b, e] = offsets as [number, number];
    if (e > dataBytes) {
      throw new Error(
        `${file}: tensor "${name}" needs data bytes [${b}, ${e}) but the file holds only ${dataBytes} ` +
          `data bytes (truncated file or offsets out of range)`,
      );
    }
    const width = DTYPE_BYTES[dtype];
    if (width !== undefined && elementCount(shape) * width !== e - b) {
      throw new Error(
        `${file}: tensor "${name}" has shape [${shape.join(', ')}] of ${dtype} ` +
          `(${elementCount(shape) * width} bytes) but data_offsets span ${e - b} bytes`,
      );
    }
    tensors.set(name, { dtype, shape: shape.slice(), begin: dataStart + b, end: dataStart + e });
  }
  return { tensors, metadata };
}

/** Opens one .safetensors file: reads and checks the header now, tensor data on demand. */
export function openSafetensors(file: string): TensorSource {
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    if (size < 8) throw new Error(`${file}: ${size} bytes is too short for a safetensors file (needs 8+)`);
    const lenBytes = new Uint8Array(8);
    readFully(fd, lenBytes, 0, file);
    const headerLen = new DataView(lenBytes.buffer).getBigUint64(0, true);
    if (headerLen > BigInt(size - 8)) {
      throw new Error(`${file}: header length ${headerLen} runs past the end of the ${size}-byte file`);
    }
    if (headerLen > BigInt(MAX_HEADER_BYTES)) {
      throw new Error(`${file}: header length ${headerLen} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
    }
    const headerBytes = new Uint8Array(Number(headerLen));
    readFully(fd, headerBytes, 8, file);
    const { tensors, metadata } = parseSafetensorsHeader(headerBytes, 8 + Number(headerLen), size, file);
    return new SingleFileSource(file, fd, tensors, metadata);
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
}

/**
 * What every one-file tensor source shares: the name → entry map, the open file and its
 * closing. Subclasses say what an entry's shape and dtype are and how to decode it.
 */
export abstract class FileTensorSource<Entry> implements TensorSource {
  readonly files: string[];
  protected fd: number | undefined;

  constructor(
    readonly file: string,
    fd: number,
    protected readonly tensors: Map<string, Entry>,
  ) {
    this.files = [file];
    this.fd = fd;
  }

  abstract shape(name: string): number[];
  abstract dtype(name: string): string;
  abstract get(name: string): Tensor32;
  abstract metadata(): Record<string, string>;

  names(): string[] {
    return [...this.tensors.keys()];
  }
  has(name: string): boolean {
    return this.tensors.has(name);
  }
  /** The entry of `name`; an unknown name is an error naming the file. */
  protected entry(name: string): Entry {
    const t = this.tensors.get(name);
    if (!t) throw new Error(`${this.file}: no tensor named "${name}"`);
    return t;
  }
  fileOf(name: string): string {
    this.entry(name);
    return this.file;
  }
  /** The open file, or an error once closed. */
  protected openFd(): number {
    if (this.fd === undefined) throw new Error(`${this.file}: already closed`);
    return this.fd;
  }
  close(): void {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }
}

class SingleFileSource extends FileTensorSource<TensorInfo> {
  constructor(
    file: string,
    fd: number,
    tensors: Map<string, TensorInfo>,
    private readonly meta: Record<string, string>,
  ) {
    super(file, fd, tensors);
  }

  shape(name: string): number[] {
    return this.entry(name).shape.slice();
  }
  dtype(name: string): string {
    return this.entry(name).dtype;
  }
  metadata(): Record<string, string> {
    return { ...this.meta };
  }

  get(name: string): Tensor32 {
    const t = this.entry(name);
    if (!DECODABLE_DTYPES.has(t.dtype)) {
      throw new Error(`${this.file}: tensor "${name}" has dtype ${t.dtype}, which this reader cannot decode`);
    }
    const fd = this.openFd();
    const count = elementCount(t.shape);
    if (t.dtype === 'F32') {
      // Read straight into the result: no intermediate copy for the common case.
      const out = new Float32Array(count);
      readFully(fd, new Uint8Array(out.buffer), t.begin, this.file);
      return { shape: t.shape.slice(), data: out };
    }
    const bytes = new Uint8Array(t.end - t.begin);
    readFully(fd, bytes, t.begin, this.file);
    return { shape: t.shape.slice(), data: decodeToFloat32(t.dtype, bytes, count) };
  }
}

/**
 * Opens a sharded Hugging Face checkpoint (`model.safetensors.index.json` with a `weight_map`
 * from tensor name to shard file) as one lookup. Every shard is opened once, by `openShard`
 * (safetensors here; weights.ts passes the PyTorch reader for `pytorch_model.bin.index.json`).
 */
export function openShardedSafetensors(indexFile: string, openShard: (file: string) => TensorSource = openSafetensors): TensorSource {
  let index: { weight_map?: unknown; metadata?: unknown };
  try {
    index = JSON.parse(fs.readFileSync(indexFile, 'utf8'));
  } catch (e) {
    throw new Error(`${indexFile}: cannot read the shard index (${(e as Error).message})`);
  }
  const weightMap = index.weight_map;
  if (!weightMap || typeof weightMap !== 'object') throw new Error(`${indexFile}: no "weight_map" object`);
  const dir = path.dirname(indexFile);
  const shards = new Map<string, TensorSource>();
  const owner = new Map<string, TensorSource>();
  try {
    for (const [name, shardName] of Object.entries(weightMap as Record<string, unknown>)) {
      if (typeof shardName !== 'string') throw new Error(`${indexFile}: weight_map["${name}"] is not a file name`);
      let shard = shards.get(shardName);
      if (!shard) {
        const shardPath = path.join(dir, shardName);
        if (!fs.existsSync(shardPath)) throw new Error(`${indexFile}: shard ${shardPath} (for "${name}") is missing`);
        shard = openShard(shardPath);
        shards.set(shardName, shard);
      }
      if (!shard.has(name)) throw new Error(`${indexFile}: "${name}" is mapped to ${shard.files[0]} but is not in it`);
      owner.set(name, shard);
    }
  } catch (e) {
    for (const s of shards.values()) s.close();
    throw e;
  }
  const lookup = (name: string): TensorSource => {
    const s = owner.get(name);
    if (!s) throw new Error(`${indexFile}: no tensor named "${name}" in the weight_map`);
    return s;
  };
  const files = [...shards.values()].map((s) => s.files[0]);
  return {
    files,
    names: () => [...owner.keys()],
    has: (name) => owner.has(name),
    shape: (name) => lookup(name).shape(name),
    dtype: (name) => lookup(name).dtype(name),
    get: (name) => lookup(name).get(name),
    fileOf: (name) => lookup(name).fileOf(name),
    metadata: () => ({}),
    close: () => {
      for (const s of shards.values()) s.close();
    },
  };
}

/** Opens either a single file or, for a `*.index.json` path, a sharded checkpoint. */
export function openTensorSource(file: string): TensorSource {
  return file.endsWith('.index.json') ? openShardedSafetensors(file) : openSafetensors(file);
}

// ---------------------------------------------------------------------------------------------
// Writer

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
