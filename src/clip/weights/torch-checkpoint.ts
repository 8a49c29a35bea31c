// PyTorch checkpoints (`pytorch_model.bin`, `open_clip_pytorch_model.bin`, open_clip's `.pt`
// release files) as a TensorSource, like safetensors files: method.md §1's restricted unpickler.
//
// torch.save (PyTorch ≥ 1.6) writes a zip: `<name>/data.pkl` is a pickle of the state dict in
// which each tensor is `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, …)` and
// each storage a persistent id `('storage', torch.FloatStorage, key, location, numel)` whose bytes
// are the entry `<name>/data/<key>`. The pickle is read by the restricted unpickler of
// torch-pickle.ts, which executes nothing; this file reads the zip, the state dict and the tensors.
import fs from 'node:fs';
import { decodeToFloat32, DECODABLE_DTYPES } from './dtypes.ts';
import { FileTensorSource, readFully, type TensorSource } from './tensor-source.ts';
import type { Tensor32 } from '../types.ts';
import { PyGlobal, STORAGE_DTYPES, StorageRef, TensorRef, unpickle, UnsafePickleError } from './torch-pickle.ts';
import { readZipEntries, type ZipEntry } from './zip-entries.ts';

/** Opens a zip-format PyTorch checkpoint holding a state dict (or `{state_dict: …}`) of tensors. */
export function openTorchCheckpoint(file: string): TensorSource {
  const fd = fs.openSync(file, 'r');
  try {
    const magic = Buffer.alloc(4);
    fs.readSync(fd, magic, 0, 4, 0);
    if (magic.readUInt32LE(0) !== 0x04034b50) {
      const legacy = magic[0] === 0x80;
      throw new Error(
        legacy
          ? `${file}: a PyTorch checkpoint in the legacy (before 1.6) format, which this reader does not take; re-save it with torch.save in a current PyTorch, or convert it to safetensors`
          : `${file}: not a PyTorch checkpoint (not a zip archive)`,
      );
    }
    const entries = readZipEntries(fd, file);
    const pkl = [...entries.keys()].find((name) => /^[^/]+\/data\.pkl$/.test(name));
    if (!pkl) throw new Error(`${file}: no <name>/data.pkl inside; not a torch.save checkpoint`);
    const prefix = pkl.slice(0, -'data.pkl'.length);
    if (entries.has(`${prefix}constants.pkl`) || [...entries.keys()].some((name) => name.startsWith(`${prefix}code/`))) {
      throw new Error(
        `${file}: a TorchScript archive (torch.jit.save, like OpenAI's original CLIP .pt files), not a state dict; ` +
          `use the checkpoint's Hugging Face repo (e.g. openai/clip-vit-base-patch16), or in Python save torch.jit.load(...).state_dict() with torch.save`,
      );
    }
    const byteorder = entries.get(`${prefix}byteorder`);
    if (byteorder && readEntry(fd, byteorder, file).toString('latin1') !== 'little') {
      throw new Error(`${file}: big-endian tensors are not supported`);
    }

    const storages = new Map<string, StorageRef>();
    const persistentLoad = (pid: unknown): StorageRef => {
      if (!Array.isArray(pid) || pid[0] !== 'storage' || pid.length < 5) throw new UnsafePickleError(`${file}: unknown persistent id`);
      const [, type, key, , numel] = pid;
      if (!(type instanceof PyGlobal) || !(type.name in STORAGE_DTYPES)) throw new UnsafePickleError(`${file}: persistent id without a storage type`);
      if (typeof key !== 'string' || !/^\w+$/.test(key) || !Number.isSafeInteger(numel)) throw new UnsafePickleError(`${file}: malformed storage id`);
      const { dtype, bytes } = STORAGE_DTYPES[type.name];
      const entry = entries.get(`${prefix}data/${key}`);
      if (!entry) throw new Error(`${file}: storage ${key} is named but missing from the archive`);
      if (entry.method !== 0) throw new Error(`${file}: storage ${key} is compressed (zip method ${entry.method}); torch.save stores entries uncompressed`);
      if (entry.size < (numel as number) * bytes) throw new Error(`${file}: storage ${key} holds ${entry.size} bytes, fewer than ${numel} × ${bytes}`);
      const ref = storages.get(key) ?? new StorageRef(key, dtype, bytes, numel as number);
      storages.set(key, ref);
      return ref;
    };
    const root = unpickle(readEntry(fd, entries.get(pkl)!, file), persistentLoad, file);
    const tensors = stateDictTensors(root, file);
    return new TorchCheckpointSource(file, fd, tensors, entries, prefix);
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
}

function readEntry(fd: number, entry: ZipEntry, file: string, from = 0, length = entry.size - from): Buffer {
  if (entry.method !== 0) throw new Error(`${file}: an entry is compressed (zip method ${entry.method}); torch.save stores entries uncompressed`);
  const out = Buffer.alloc(length);
  readFully(fd, out, entry.dataOffset + from, file);
  return out;
}

/**
 * The name → tensor map of a state dict: the object itself, or its `state_dict` entry (open_clip
 * training checkpoints), without DataParallel's `module.` prefix. Non-tensor entries are skipped.
 */
function stateDictTensors(root: unknown, file: string): Map<string, TensorRef> {
  let dict = root;
  if (dict instanceof Map && dict.get('state_dict') instanceof Map) dict = dict.get('state_dict');
  if (!(dict instanceof Map)) throw new Error(`${file}: the checkpoint is not a dict of tensors`);
  const tensors = new Map<string, TensorRef>();
  for (const [k, v] of dict) if (typeof k === 'string' && v instanceof TensorRef) tensors.set(k, v);
  if (tensors.size === 0) throw new Error(`${file}: the checkpoint holds no tensors`);
  if ([...tensors.keys()].every((k) => k.startsWith('module.'))) {
    return new Map([...tensors].map(([k, v]) => [k.slice('module.'.length), v]));
  }
  return tensors;
}

class TorchCheckpointSource extends FileTensorSource<TensorRef> {
  constructor(
    file: string,
    fd: number,
    tensors: Map<string, TensorRef>,
    private readonly entries: Map<string, ZipEntry>,
    private readonly prefix: string,
  ) {
    super(file, fd, tensors);
  }

  shape(name: string): number[] {
    return this.entry(name).shape.slice();
  }
  dtype(name: string): string {
    return this.entry(name).storage.dtype;
  }
  metadata(): Record<string, string> {
    return { format: 'pt' };
  }

  get(name: string): Tensor32 {
    const t = this.entry(name);
    const fd = this.openFd();
    const { storage, shape, stride, offset } = t;
    if (!DECODABLE_DTYPES.has(storage.dtype)) throw new Error(`${this.file}: tensor "${name}" has dtype ${storage.dtype}, which this reader cannot decode`);
    const count = shape.reduce((a, b) => a * b, 1);
    if (count === 0) return { shape: shape.slice(), data: new Float32Array(0) };
    // The span of storage elements the tensor touches.
    let span = 1;
    for (let i = 0; i < shape.length; i++) span += (shape[i] - 1) * stride[i];
    const entry = this.entries.get(`${this.prefix}data/${storage.key}`)!;
    const contiguous = span === count && isContiguous(shape, stride);
    if (contiguous && storage.dtype === 'F32') {
      // The common case: read straight into the result, no intermediate copy.
      const out = new Float32Array(count);
      readFully(fd, new Uint8Array(out.buffer), entry.dataOffset + offset * 4, this.file);
      return { shape: shape.slice(), data: out };
    }
    const raw = readEntry(fd, entry, this.file, offset * storage.itemBytes, span * storage.itemBytes);
    const values = decodeToFloat32(storage.dtype, new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength), span);
    if (contiguous) return { shape: shape.slice(), data: values };
    // A strided view (e.g. a transposed weight): gather it in row-major order.
    const out = new Float32Array(count);
    const index = new Array<number>(shape.length).fill(0);
    for (let i = 0; i < count; i++) {
      let at = 0;
      for (let d = 0; d < shape.length; d++) at += index[d] * stride[d];
      out[i] = values[at];
      for (let d = shape.length - 1; d >= 0; d--) {
        if (++index[d] < shape[d]) break;
        index[d] = 0;
      }
    }
    return { shape: shape.slice(), data: out };
  }

}

function isContiguous(shape: number[], stride: number[]): boolean {
  let expected = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    if (shape[d] !== 1 && stride[d] !== expected) return false;
    expected *= shape[d];
  }
  return true;
}
