// PyTorch zip checkpoints: known answers from files torch.save wrote (test/fixtures, made by
// torch-checkpoint.py with torch 1.13), refusal of code-running and legacy pickles, and a whole
// generated model loaded from a .bin equal to the same model from safetensors.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateModel } from '../../../src/dev/random-model.ts';
import { openTensorSource } from '../../../src/clip/weights/safetensors.ts';
import { openTorchCheckpoint } from '../../../src/clip/weights/torch-checkpoint.ts';
import { UnsafePickleError, unpickle } from '../../../src/clip/weights/torch-pickle.ts';
import { loadClipWeights } from '../../../src/clip/weights/clip-weights.ts';
import type { Tensor32 } from '../../../src/clip/types.ts';
import { writeTorchStateDict } from '../../support/torch-zip.ts';

const fixtures = new URL('../../fixtures/', import.meta.url).pathname;
const expected = JSON.parse(fs.readFileSync(path.join(fixtures, 'torch-state-dict.json'), 'utf8')) as Record<
  string,
  { shape: number[]; dtype: string; values: number[] }
>;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'torch-ckpt-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const DTYPES: Record<string, string> = { float32: 'F32', float16: 'F16', bfloat16: 'BF16', float64: 'F64', int64: 'I64' };

describe('openTorchCheckpoint on files torch.save wrote', () => {
  it('reads every tensor: dtypes, 0-d, parameters, strided views and shared storages with offsets', () => {
    const source = openTorchCheckpoint(path.join(fixtures, 'torch-state-dict.bin'));
    try {
      expect(source.names()).toEqual(Object.keys(expected));
      for (const [name, want] of Object.entries(expected)) {
        expect(source.shape(name), name).toEqual(want.shape);
        expect(source.dtype(name), name).toBe(DTYPES[want.dtype]);
        const got = source.get(name);
        expect(got.shape).toEqual(want.shape);
        // float32 holds every fixture value of 16-bit and 32-bit dtypes exactly; f64 rounds.
        const tolerance = want.dtype === 'float64' ? 1e-7 : 0;
        expect(got.data.length).toBe(want.values.length);
        for (let i = 0; i < want.values.length; i++) expect(Math.abs(got.data[i] - want.values[i]), `${name}[${i}]`).toBeLessThanOrEqual(tolerance);
      }
    } finally {
      source.close();
    }
  });

  it("takes open_clip's training form: weights under state_dict, DataParallel's module. prefix dropped", () => {
    const source = openTorchCheckpoint(path.join(fixtures, 'torch-training-checkpoint.pt'));
    try {
      expect(source.names()).toEqual(['f32']);
      expect(Array.from(source.get('f32').data)).toEqual(expected.f32.values);
    } finally {
      source.close();
    }
  });

  it('refuses a pickle that names a callable outside the allowlist, before anything runs', () => {
    const file = path.join(fixtures, 'torch-malicious.bin');
    expect(() => openTorchCheckpoint(file)).toThrow(UnsafePickleError);
    expect(() => openTorchCheckpoint(file)).toThrow(/names posix\.system, which a weights file has no reason to use; refused/);
  });

  it('names the legacy format, non-zip files and damaged archives', () => {
    expect(() => openTorchCheckpoint(path.join(fixtures, 'torch-legacy.bin'))).toThrow(/legacy \(before 1\.6\) format.*re-save it/);
    expect(() => openTorchCheckpoint(path.join(fixtures, 'torchscript.pt'))).toThrow(/a TorchScript archive \(torch\.jit\.save.*not a state dict/);
    // The pickle entry marked deflated in the central directory: refused, not misread.
    const marked = Buffer.from(fs.readFileSync(path.join(fixtures, 'torch-state-dict.bin')));
    const central = marked.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
    expect(marked.toString('utf8', central + 46, central + 46 + marked.readUInt16LE(central + 28))).toBe('torch-state-dict/data.pkl');
    marked.writeUInt16LE(8, central + 10);
    const deflated = path.join(tmp, 'deflated.bin');
    fs.writeFileSync(deflated, marked);
    expect(() => openTorchCheckpoint(deflated)).toThrow(/an entry is compressed \(zip method 8\); torch.save stores entries uncompressed/);
    const text = path.join(tmp, 'text.bin');
    fs.writeFileSync(text, 'version https://git-lfs.github.com/spec/v1\n');
    expect(() => openTorchCheckpoint(text)).toThrow(/not a PyTorch checkpoint \(not a zip archive\)/);
    const whole = fs.readFileSync(path.join(fixtures, 'torch-state-dict.bin'));
    const cut = path.join(tmp, 'cut.bin');
    fs.writeFileSync(cut, whole.subarray(0, Math.floor(whole.length / 2)));
    expect(() => openTorchCheckpoint(cut)).toThrow(/cut\.bin: not a zip archive/);
  });
});

describe('unpickle', () => {
  const run = (bytes: number[]) => unpickle(Uint8Array.from(bytes), () => null, 'p');

  it('builds dicts, lists, tuples and numbers', () => {
    // {'a': [1, -2, 70000], 'b': (True, None, 2.5)} at protocol 2
    const bigint = [0x8a, 3, 0x70, 0x11, 0x01]; // LONG1 70000
    const float = [0x47, 0x40, 0x04, 0, 0, 0, 0, 0, 0]; // BINFLOAT 2.5
    const v = run([0x80, 2, 0x7d, 0x28, 0x8c, 1, 0x61, 0x5d, 0x28, 0x4b, 1, 0x4a, 0xfe, 0xff, 0xff, 0xff, ...bigint, 0x65, 0x8c, 1, 0x62, 0x88, 0x4e, ...float, 0x87, 0x75, 0x2e]);
    expect(v).toEqual(new Map<string, unknown>([['a', [1, -2, 70000]], ['b', [true, null, 2.5]]]));
  });

  it('refuses unknown opcodes, a truncated stream and globals outside the allowlist', () => {
    expect(() => run([0x80, 2, 0x69])).toThrow(/opcode 0x69 at byte 2 is not one torch.save writes/);
    expect(() => run([0x80, 2, 0x58, 10, 0, 0, 0, 0x61])).toThrow(/pickle ends early/);
    const global = (s: string) => [0x63, ...Buffer.from(s)];
    expect(() => run([0x80, 2, ...global('builtins\neval\n'), 0x2e])).toThrow(/names builtins\.eval/);
    expect(() => run([0x80, 2, ...global('torch\nload\n'), 0x2e])).toThrow(/names torch\.load/);
  });
});

/** Every array of the canonical weights, in order. */
function flat(w: unknown, out: Float32Array[] = []): Float32Array[] {
  if (w instanceof Float32Array) out.push(w);
  else if (w && typeof w === 'object') for (const v of Object.values(w)) flat(v, out);
  return out;
}

function expectSameWeights(a: Awaited<ReturnType<typeof loadClipWeights>>, b: Awaited<ReturnType<typeof loadClipWeights>>) {
  expect(b.weights.config).toEqual(a.weights.config);
  const [fa, fb] = [flat(a.weights), flat(b.weights)];
  expect(fb.length).toBe(fa.length);
  expect(fa.length).toBeGreaterThan(20);
  fa.forEach((x, i) => expect(Buffer.from(fb[i].buffer, fb[i].byteOffset, fb[i].byteLength).equals(Buffer.from(x.buffer, x.byteOffset, x.byteLength))).toBe(true));
}

describe('a whole model from a .bin', () => {
  it('sharded: pytorch_model.bin.index.json and its shards give the same weights', async () => {
    const st = path.join(tmp, 'sharded-st');
    generateModel({ arch: 'tiny', seed: 4, out: st, layout: 'hf' });
    const bin = path.join(tmp, 'sharded-bin');
    fs.mkdirSync(bin);
    for (const f of fs.readdirSync(st)) if (f.endsWith('.json')) fs.copyFileSync(path.join(st, f), path.join(bin, f));
    const source = openTensorSource(path.join(st, 'model.safetensors'));
    const names = source.names().filter((n) => source.dtype(n) === 'F32');
    const shards: Record<string, Tensor32>[] = [{}, {}];
    const weightMap: Record<string, string> = {};
    names.forEach((n, i) => {
      const s = i < names.length / 2 ? 0 : 1;
      shards[s][n] = source.get(n);
      weightMap[n] = `pytorch_model-0000${s + 1}-of-00002.bin`;
    });
    source.close();
    shards.forEach((t, s) => writeTorchStateDict(path.join(bin, `pytorch_model-0000${s + 1}-of-00002.bin`), t));
    fs.writeFileSync(path.join(bin, 'pytorch_model.bin.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
    const b = await loadClipWeights(bin);
    expect(b.files.filter((f) => f.endsWith('.bin'))).toHaveLength(2);
    expectSameWeights(await loadClipWeights(st), b);
  });

  it.each([
    ['open_clip', 'open_clip_model.safetensors', 'open_clip_pytorch_model.bin'],
    ['hf', 'model.safetensors', 'pytorch_model.bin'],
  ] as const)('%s layout: the same weights as from safetensors', async (layout, safetensorsName, binName) => {
    const st = path.join(tmp, `${layout}-st`);
    generateModel({ arch: 'tiny', seed: 3, out: st, layout });
    const bin = path.join(tmp, `${layout}-bin`);
    fs.mkdirSync(bin);
    for (const f of fs.readdirSync(st)) if (f.endsWith('.json')) fs.copyFileSync(path.join(st, f), path.join(bin, f));
    const source = openTensorSource(path.join(st, safetensorsName));
    const tensors: Record<string, Tensor32> = {};
    for (const name of source.names()) if (source.dtype(name) === 'F32') tensors[name] = source.get(name);
    source.close();
    writeTorchStateDict(path.join(bin, binName), tensors);

    const a = await loadClipWeights(st);
    const b = await loadClipWeights(bin);
    expect(b.layout).toBe(layout);
    expect(b.files[b.files.length - 1]).toBe(path.join(bin, binName));
    expectSameWeights(a, b);
  });
});
