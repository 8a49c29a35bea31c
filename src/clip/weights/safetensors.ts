// Reading .safetensors files: an 8-byte little-endian header length, a JSON header mapping
// tensor names to {dtype, shape, data_offsets}, then the raw little-endian data. Tensors are
// decoded lazily, one positioned read per tensor, so a 600 MB checkpoint is never held twice in
// memory (F32 data is read straight into the returned Float32Array). The writer is
// safetensors-writer.ts; dtypes and fp16/bf16 conversions are dtypes.ts.

import fs from 'node:fs';
import path from 'node:path';
import type { Tensor32 } from '../types.ts';
import { DECODABLE_DTYPES, decodeToFloat32, DTYPE_BYTES, elementCount } from './dtypes.ts';
import { FileTensorSource, readFully, type TensorSource } from './tensor-source.ts';

/** The reference implementation refuses headers above 100 MB; so do we (guards against garbage). */
const MAX_HEADER_BYTES = 100_000_000;

export interface TensorInfo {
  dtype: string;
  shape: number[];
  /** Absolute byte range [begin, end) of the tensor's data within the file. */
  begin: number;
  end: number;
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
