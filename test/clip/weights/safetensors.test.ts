import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { floatToBf16Bits, floatToHalfBits, halfBitsToFloatBits } from '../../../src/clip/weights/dtypes.ts';
import { openSafetensors, openShardedSafetensors, openTensorSource } from '../../../src/clip/weights/safetensors.ts';
import { writeSafetensors, writeSafetensorsStreamed } from '../../../src/clip/weights/safetensors-writer.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'safetensors-test-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const file = (name: string) => path.join(tmp, name);

/** A file built by hand: header object (or raw header text) then data bytes. */
function rawFile(name: string, header: unknown, data: Uint8Array, headerLength?: bigint): string {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(headerLength ?? BigInt(json.length));
  const p = file(name);
  fs.writeFileSync(p, Buffer.concat([prefix, json, data]));
  return p;
}

const u16 = (...xs: number[]) => new Uint8Array(new Uint16Array(xs).buffer);

/** fp16 value from its bits by the textbook formula: an independent check on the table. */
function halfByFormula(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 31) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

function bitsToFloat(bits: number): number {
  const v = new DataView(new ArrayBuffer(4));
  v.setUint32(0, bits >>> 0);
  return v.getFloat32(0);
}

describe('fp16 / bf16 conversions', () => {
  it('decodes every fp16 bit pattern like the textbook formula (normals, subnormals, inf, nan)', () => {
    const wrong: string[] = [];
    for (let h = 0; h < 65536; h++) {
      const got = bitsToFloat(halfBitsToFloatBits(h));
      const want = halfByFormula(h);
      const ok = Number.isNaN(want) ? Number.isNaN(got) : Object.is(got, want);
      if (!ok) wrong.push(`0x${h.toString(16)}: ${got} vs ${want}`);
    }
    expect(wrong.slice(0, 5)).toEqual([]);
  });

  it('encodes back to the same fp16 bits for every non-nan pattern', () => {
    const wrong: number[] = [];
    for (let h = 0; h < 65536; h++) {
      if ((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0) continue;
      if (floatToHalfBits(bitsToFloat(halfBitsToFloatBits(h))) !== h) wrong.push(h);
    }
    expect(wrong.slice(0, 5)).toEqual([]);
  });

  it('rounds fp16 to nearest even, overflows to inf and underflows to zero', () => {
    expect(floatToHalfBits(1 + 2 ** -11)).toBe(0x3c00); // halfway, even stays down
    expect(floatToHalfBits(1 + 3 * 2 ** -11)).toBe(0x3c02); // halfway, odd goes up
    expect(floatToHalfBits(65520)).toBe(0x7c00); // rounds past the largest finite half
    expect(floatToHalfBits(1e6)).toBe(0x7c00);
    expect(floatToHalfBits(-1e6)).toBe(0xfc00);
    expect(floatToHalfBits(2 ** -25)).toBe(0x0000); // exactly half the smallest subnormal: to even
    expect(floatToHalfBits(1.5 * 2 ** -25)).toBe(0x0001);
    expect(floatToHalfBits(2 ** -14 - 2 ** -25)).toBe(0x0400); // subnormal rounding carries into normal
    expect(floatToHalfBits(-0)).toBe(0x8000);
    expect(floatToHalfBits(NaN) & 0x7e00).toBe(0x7e00);
  });

  it('rounds bf16 to nearest even and keeps nan', () => {
    expect(floatToBf16Bits(1)).toBe(0x3f80);
    expect(floatToBf16Bits(1 + 2 ** -8)).toBe(0x3f80);
    expect(floatToBf16Bits(1 + 3 * 2 ** -8)).toBe(0x3f82);
    expect(floatToBf16Bits(-2)).toBe(0xc000);
    expect(floatToBf16Bits(Infinity)).toBe(0x7f80);
    expect(floatToBf16Bits(NaN) & 0x7fc0).toBe(0x7fc0);
  });
});

describe('reading', () => {
  it('round-trips F32, F16 and BF16 through the writer', () => {
    const values = new Float32Array([0, -0, 1, -2.5, 0.333251953125, 65504, 2 ** -24, 2 ** -14, Infinity, -Infinity, NaN, 1e-3]);
    const p = file('all.safetensors');
    writeSafetensors(
      p,
      {
        plain: { shape: [3, 4], data: values },
        half: { dtype: 'F16', shape: [12], data: values },
        brain: { dtype: 'BF16', shape: [2, 6], data: values },
        scalar: { shape: [], data: new Float32Array([4.605170249938965]) },
      },
      { format: 'pt' },
    );
    const st = openSafetensors(p);
    try {
      expect(st.names()).toEqual(['plain', 'half', 'brain', 'scalar']);
      expect(st.metadata()).toEqual({ format: 'pt' });
      expect(st.dtype('half')).toBe('F16');
      expect(st.shape('plain')).toEqual([3, 4]);
      const plain = st.get('plain');
      expect(plain.shape).toEqual([3, 4]);
      expect(Array.from(plain.data)).toEqual(Array.from(values));
      // These values are all exact in fp16 (1e-3 is not: it rounds to 0.0010004043579101562).
      const half = Array.from(st.get('half').data);
      expect(half.slice(0, 11)).toEqual(Array.from(values.slice(0, 11)));
      expect(Object.is(half[1], -0)).toBe(true);
      expect(half[11]).toBe(0.0010004043579101562);
      const brain = st.get('brain').data;
      expect(brain[2]).toBe(1);
      expect(brain[3]).toBe(-2.5);
      expect(brain[8]).toBe(Infinity);
      expect(brain[10]).toBeNaN();
      expect(Math.abs(brain[4] - 1 / 3)).toBeLessThan(2e-3);
      expect(st.get('scalar')).toEqual({ shape: [], data: new Float32Array([4.605170249938965]) });
    } finally {
      st.close();
    }
  });

  it('decodes hand-written F16 and BF16 bytes including subnormals, inf and nan', () => {
    const half = u16(0x3c00, 0x0001, 0x03ff, 0x7c00, 0xfc00, 0x7e00, 0x8000, 0xc000);
    const brain = u16(0x3f80, 0x0001, 0x7f80, 0x7fc0, 0xc000, 0x4049);
    const p = rawFile(
      'hand.safetensors',
      {
        h: { dtype: 'F16', shape: [8], data_offsets: [0, 16] },
        b: { dtype: 'BF16', shape: [6], data_offsets: [16, 28] },
      },
      new Uint8Array([...half, ...brain]),
    );
    const st = openSafetensors(p);
    const h = Array.from(st.get('h').data);
    expect(h[0]).toBe(1);
    expect(h[1]).toBe(2 ** -24);
    expect(h[2]).toBe(1023 * 2 ** -24);
    expect(h[3]).toBe(Infinity);
    expect(h[4]).toBe(-Infinity);
    expect(h[5]).toBeNaN();
    expect(Object.is(h[6], -0)).toBe(true);
    expect(h[7]).toBe(-2);
    const b = Array.from(st.get('b').data);
    expect(b[0]).toBe(1);
    expect(b[1]).toBe(bitsToFloat(0x00010000)); // a float32 subnormal
    expect(b[2]).toBe(Infinity);
    expect(b[3]).toBeNaN();
    expect(b[4]).toBe(-2);
    expect(b[5]).toBe(3.140625);
    st.close();
  });

  it('reads I64 / I32 buffers as floats and refuses unknown dtypes only when asked', () => {
    const ids = new Uint8Array(new BigInt64Array([0n, 1n, 76n]).buffer);
    const ints = new Uint8Array(new Int32Array([-3, 7]).buffer);
    const p = file('ints.safetensors');
    writeSafetensors(p, {
      position_ids: { dtype: 'I64', shape: [1, 3], bytes: ids },
      small: { dtype: 'I32', shape: [2], bytes: ints },
      fp8: { dtype: 'F8_E4M3', shape: [4], bytes: new Uint8Array(4) },
      odd: { dtype: 'X_UNKNOWN', shape: [3], bytes: new Uint8Array(5) },
    });
    const st = openSafetensors(p);
    expect(Array.from(st.get('position_ids').data)).toEqual([0, 1, 76]);
    expect(Array.from(st.get('small').data)).toEqual([-3, 7]);
    expect(st.shape('fp8')).toEqual([4]);
    expect(() => st.get('fp8')).toThrow(/F8_E4M3.*cannot decode/);
    expect(() => st.get('odd')).toThrow(p);
    expect(() => st.get('nope')).toThrow(/no tensor named "nope"/);
    st.close();
  });

  it('pads the header with spaces to a multiple of 8', () => {
    const p = file('pad.safetensors');
    writeSafetensors(p, { abc: { shape: [1], data: new Float32Array([1]) } });
    const bytes = fs.readFileSync(p);
    const n = Number(bytes.readBigUInt64LE(0));
    expect(n % 8).toBe(0);
    const header = bytes.subarray(8, 8 + n).toString('utf8');
    expect(header).toMatch(/^\{.*\} *$/);
    expect(JSON.parse(header).abc).toEqual({ dtype: 'F32', shape: [1], data_offsets: [0, 4] });
    expect(bytes.length).toBe(8 + n + 4);
  });

  it('streams the same bytes as the in-memory writer', () => {
    const a = new Float32Array([1, 2, 3, 4, 5, 6]);
    const b = new Float32Array([0.5, -0.25]);
    writeSafetensors(file('mem.safetensors'), { a: { dtype: 'F16', shape: [2, 3], data: a }, b: { shape: [2], data: b } }, { k: 'v' });
    writeSafetensorsStreamed(
      file('stream.safetensors'),
      [
        { name: 'a', dtype: 'F16', shape: [2, 3], produce: () => a },
        { name: 'b', dtype: 'F32', shape: [2], produce: () => b },
      ],
      { k: 'v' },
    );
    expect(fs.readFileSync(file('stream.safetensors')).equals(fs.readFileSync(file('mem.safetensors')))).toBe(true);
    expect(() =>
      writeSafetensorsStreamed(file('bad.safetensors'), [{ name: 'a', dtype: 'F32', shape: [3], produce: () => b }]),
    ).toThrow(/produced 2 values/);
    expect(fs.existsSync(file('bad.safetensors'))).toBe(false);
    expect(fs.existsSync(file('bad.safetensors.partial'))).toBe(false);
  });
});

describe('corrupt files', () => {
  const good = () => {
    const p = file('good.safetensors');
    writeSafetensors(p, { w: { shape: [4, 4], data: new Float32Array(16).fill(1) } });
    return p;
  };

  it('rejects a file shorter than 8 bytes', () => {
    const p = file('short.safetensors');
    fs.writeFileSync(p, Buffer.from([1, 2, 3]));
    expect(() => openSafetensors(p)).toThrow(new RegExp(`${p}.*too short`));
  });

  it('rejects a header length beyond the file', () => {
    const p = rawFile('long-header.safetensors', '{}', new Uint8Array(0), 1000n);
    expect(() => openSafetensors(p)).toThrow(/header length 1000 runs past the end/);
  });

  it('rejects a header that is not JSON', () => {
    const p = rawFile('bad-json.safetensors', '{"w": {"dtype": "F32", ', new Uint8Array(8));
    expect(() => openSafetensors(p)).toThrow(new RegExp(`${p}.*not valid JSON`));
  });

  it('rejects a truncated file when opening', () => {
    const src = good();
    const p = file('truncated.safetensors');
    const bytes = fs.readFileSync(src);
    fs.writeFileSync(p, bytes.subarray(0, bytes.length - 10));
    expect(() => openSafetensors(p)).toThrow(new RegExp(`${p}: tensor "w" needs data bytes \\[0, 64\\).*truncated`));
  });

  it('rejects data_offsets that disagree with shape and dtype', () => {
    const p = rawFile('mismatch.safetensors', { w: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 20] } }, new Uint8Array(24));
    expect(() => openSafetensors(p)).toThrow(/shape \[2, 3\] of F32 \(24 bytes\) but data_offsets span 20 bytes/);
  });

  it('rejects malformed entries', () => {
    const p = rawFile('malformed.safetensors', { w: { dtype: 'F32', shape: [2], data_offsets: [8, 0] } }, new Uint8Array(8));
    expect(() => openSafetensors(p)).toThrow(/malformed data_offsets/);
    const q = rawFile('noshape.safetensors', { w: { dtype: 'F32', data_offsets: [0, 4] } }, new Uint8Array(4));
    expect(() => openSafetensors(q)).toThrow(/malformed header entry/);
  });

  it('names the missing file', () => {
    expect(() => openSafetensors(file('absent.safetensors'))).toThrow(/absent\.safetensors/);
  });
});

describe('sharded checkpoints', () => {
  const shardDir = path.join(tmp, 'sharded');
  fs.mkdirSync(shardDir);
  writeSafetensors(path.join(shardDir, 'model-00001-of-00002.safetensors'), {
    a: { shape: [2], data: new Float32Array([1, 2]) },
    b: { shape: [1], data: new Float32Array([3]) },
  });
  writeSafetensors(path.join(shardDir, 'model-00002-of-00002.safetensors'), {
    c: { dtype: 'F16', shape: [2], data: new Float32Array([4, 5]) },
  });
  const writeIndex = (name: string, map: Record<string, string>) => {
    const p = path.join(shardDir, name);
    fs.writeFileSync(p, JSON.stringify({ metadata: { total_size: 16 }, weight_map: map }));
    return p;
  };

  it('opens all shards behind one lookup', () => {
    const index = writeIndex('model.safetensors.index.json', {
      a: 'model-00001-of-00002.safetensors',
      b: 'model-00001-of-00002.safetensors',
      c: 'model-00002-of-00002.safetensors',
    });
    const st = openTensorSource(index);
    expect(st.files).toHaveLength(2);
    expect(st.names().sort()).toEqual(['a', 'b', 'c']);
    expect(Array.from(st.get('a').data)).toEqual([1, 2]);
    expect(Array.from(st.get('c').data)).toEqual([4, 5]);
    expect(st.dtype('c')).toBe('F16');
    expect(st.fileOf('c')).toMatch(/model-00002-of-00002/);
    expect(() => st.get('zzz')).toThrow(/no tensor named "zzz"/);
    st.close();
  });

  it('reports a missing shard and a tensor that is not in its shard', () => {
    const missing = writeIndex('missing.index.json', { a: 'model-00003-of-00003.safetensors' });
    expect(() => openShardedSafetensors(missing)).toThrow(/shard .*model-00003-of-00003.safetensors.*missing/);
    const wrong = writeIndex('wrong.index.json', { c: 'model-00001-of-00002.safetensors' });
    expect(() => openShardedSafetensors(wrong)).toThrow(/"c" is mapped to .*model-00001-of-00002.safetensors but is not in it/);
  });
});
