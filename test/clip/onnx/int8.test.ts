// The int8 graphs (quantize.ts, int8-calibration.ts) and the exact graph savings of format 4:
// real ONNX Runtime sessions on the tiny generated model.
import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import { ARCHS, generateClipWeights, generateModel, outlierChannels } from '../../../src/dev/random-model.ts';
import { loadClipWeights } from '../../../src/clip/weights/clip-weights.ts';
import { buildImageGraph } from '../../../src/clip/onnx/image-graph.ts';
import { buildTextGraph } from '../../../src/clip/onnx/text-graph.ts';
import { ensureGraphs } from '../../../src/clip/onnx/graph-cache.ts';
import { GraphBuilder } from '../../../src/clip/onnx/graph-builder.ts';
import { int8MatMul, outlierChannelsOf, quantizeColumns } from '../../../src/clip/onnx/quantize.ts';
import { int8Numerics } from '../../../src/clip/onnx/int8-calibration.ts';
import { buildWindowGraph } from '../../../src/methods/winclip/window-graph.ts';
import type { ClipConfig, ClipWeights, ImageGraphOptions } from '../../../src/clip/types.ts';
import type { GraphBuildExtras } from '../../../src/clip/onnx/image-graph.ts';
import { seededPixels } from '../../support/lcg.ts';
import { hasVnni, machineWeightFormat, resolveWeightFormat } from '../../../src/clip/onnx/int8-kernel.ts';

const VNNI = machineWeightFormat() === 's8';
if (!VNNI) console.log('int8 tests: this CPU has no VNNI (avx512_vnni / avx_vnni): the s8-weight tests are skipped');

describe('int8 kernel choice (int8-kernel.ts)', () => {
  it('picks s8 only where /proc/cpuinfo lists a VNNI flag, and keeps an explicit format', () => {
    const flags = (f: string) => `processor\t: 0\nflags\t\t: fpu sse2 avx2 ${f} fma\nbugs\t\t: avx_vnni_bug\n`;
    expect(hasVnni(flags('avx512f avx512_vnni'))).toBe(true);
    expect(hasVnni(flags('avx_vnni'))).toBe(true);
    expect(hasVnni(flags('avx512f avx512vl'))).toBe(false);
    expect(hasVnni('')).toBe(false);
    expect(resolveWeightFormat('auto', flags('avx512_vnni'))).toBe('s8');
    expect(resolveWeightFormat(undefined, flags('avx2'))).toBe('u8');
    expect(resolveWeightFormat('s7', flags('avx512_vnni'))).toBe('s7');
  });

  // The reason for the choice: with VNNI the u8 × s8 kernel sums full-range products exactly
  // (int32 accumulation); the AVX2 kernel's int16 pair sums would saturate at 255·127·2.
  it.skipIf(!VNNI)('u8 × s8 MatMulInteger, fused into DynamicQuantizeMatMul, gives exact sums with ±127 weights on this VNNI CPU', async () => {
    const K = 256;
    const N = 64;
    const w = new Int8Array(K * N).map((_, i) => ((i * 7919) % 255) - 127);
    for (let k = 0; k < K; k++) {
      w[k * N] = 127;
      w[k * N + 1] = -127;
    }
    const path = join(dir, 'vnni-exact.onnx');
    const g = new GraphBuilder(path, 'vnni_exact');
    const x = g.input('x', 'float32', ['M', K]);
    const [q, s, z] = g.opN('DynamicQuantizeLinear', [x], 3);
    const y = g.op('MatMulInteger', [q, g.weightI8('w', w, [K, N]), z, g.constI8([0])]);
    g.output(g.op('Mul', [g.op('Cast', [y], { to: 1 }), s]), 'y', 'float32', ['M', N]);
    g.save();
    // Integers 0..255 with min 0 and max 255: scale 1, zero point 0, so q = x and y is Σ x·w exactly.
    const M = 33;
    const X = new Float32Array(M * K).map((_, i) => (i < K ? 255 : (i * 104729) % 256));
    X[X.length - 1] = 0;
    const session = await ort.InferenceSession.create(path, { graphOptimizationLevel: 'all' });
    const out = (await session.run({ x: new ort.Tensor('float32', X, [M, K]) })).y.data as Float32Array;
    await session.release();
    let worst = 0;
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let exact = 0;
        for (let k = 0; k < K; k++) exact += X[m * K + k] * w[k * N + n];
        worst = Math.max(worst, Math.abs(out[m * N + n] - exact));
      }
    }
    expect(out[0]).toBe(255 * 127 * K);
    expect(worst).toBe(0);
  });
});

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'onnx-int8-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const geluTiny: ClipConfig = { ...ARCHS.tiny, vision: { ...ARCHS.tiny.vision, act: 'gelu' }, text: { ...ARCHS.tiny.text, act: 'gelu' } };
const S = ARCHS.tiny.vision.imageSize;
const options: ImageGraphOptions = { imageSize: S, denseLayers: [2, 3, 4], denseStart: 3, denseAttention: 'vv' };

let count = 0;
async function runImage(weights: ClipWeights, opts: ImageGraphOptions, pixels: Float32Array, B: number, extras: GraphBuildExtras = {}) {
  const path = join(dir, `image-${count++}.onnx`);
  buildImageGraph(weights, opts, path, extras);
  const session = await ort.InferenceSession.create(path);
  const out = await session.run({ pixel_values: new ort.Tensor('float32', pixels, [B, 3, opts.imageSize, opts.imageSize]) });
  await session.release();
  return { embeds: out.image_embeds.data as Float32Array, dense: out.dense_features.data as Float32Array };
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Minimum cosine over consecutive rows of `dim` values. */
function minRowCosine(a: Float32Array, b: Float32Array, dim: number): number {
  let min = 1;
  for (let o = 0; o < a.length; o += dim) {
    let ab = 0;
    let aa = 0;
    let bb = 0;
    for (let i = o; i < o + dim; i++) {
      ab += a[i] * b[i];
      aa += a[i] * a[i];
      bb += b[i] * b[i];
    }
    min = Math.min(min, ab / Math.sqrt(aa * bb));
  }
  return min;
}

describe('exact graph savings (format 4)', () => {
  it.each([
    ['quick_gelu', ARCHS.tiny],
    ['gelu', geluTiny],
  ])('the last block run for the class token only gives what the full last block gives (%s)', async (_act, config) => {
    const weights = generateClipWeights(config, 3);
    const pixels = seededPixels(2 * 3 * S * S, 5);
    const cut = await runImage(weights, options, pixels, 2);
    const full = await runImage(weights, options, pixels, 2, { fullLastBlock: true });
    expect(maxAbsDiff(cut.embeds, full.embeds)).toBeLessThan(1e-5);
    expect(maxAbsDiff(cut.dense, full.dense)).toBeLessThan(1e-5);
  });

  it('exact GELU is fused by ONNX Runtime into one kernel (BiasGelu or Gelu), quick GELU is not touched', async () => {
    const opTypes = async (config: ClipConfig) => {
      const path = join(dir, `gelu-${count++}.onnx`);
      buildImageGraph(generateClipWeights(config, 3), options, path);
      const optimized = `${path}.opt.onnx`;
      const session = await ort.InferenceSession.create(path, { graphOptimizationLevel: 'extended', optimizedModelFilePath: optimized });
      await session.release();
      return onnxProto.onnx.ModelProto.decode(readFileSync(optimized)).graph!.node!.map((n) => n.opType);
    };
    const gelu = await opTypes(geluTiny);
    expect(gelu.filter((t) => t === 'BiasGelu' || t === 'Gelu').length).toBe(geluTiny.vision.layers);
    expect(gelu).not.toContain('Erf');
    expect(await opTypes(ARCHS.tiny)).not.toContain('BiasGelu');
  });
});

describe('int8 building blocks', () => {
  it('quantizes each column symmetrically into uint8 around 128', () => {
    const w = Float32Array.from([1, -0.5, -2, 0.25, 0.5, 0]);
    const { q, scale } = quantizeColumns(w, 3, 2);
    expect(Array.from(scale)).toEqual([2 / 127, 0.5 / 127].map(Math.fround));
    expect(Array.from(q)).toEqual([128 + 64, 128 - 127, 128 - 127, 128 + 64, 128 + 32, 128]);
  });

  it('finds outlier channels by their calibrated maximum', () => {
    const maxima = new Float32Array(64).fill(1);
    maxima[5] = 30;
    maxima[40] = 12;
    maxima[41] = 3;
    expect(Array.from(outlierChannelsOf(maxima))).toEqual([5, 40]);
    expect(outlierChannelsOf(new Float32Array(64).fill(2)).length).toBe(0);
  });

  it.each([
    [false, 'u8'],
    [true, 'u8'],
    [false, 's7'],
    [true, 's7'],
    // Full-range signed weights only where the u8 × s8 kernel sums them exactly.
    ...(VNNI ? ([[false, 's8'], [true, 's8']] as const) : []),
  ] as const)('MatMulInteger gives the fp32 product + bias to int8 precision, the bias folded into DynamicQuantizeMatMul (outlier split %s, %s weights)', async (split, format) => {
    const K = 96;
    const N = 40;
    const M = 33;
    const w = seededPixels(K * N, 9);
    const x = seededPixels(M * K, 10);
    // One input channel ×40: the split keeps the others' precision.
    for (let m = 0; m < M; m++) x[m * K + 7] *= 40;
    const path = join(dir, `mm-${split}-${format}.onnx`);
    const g = new GraphBuilder(path, 'mm');
    const input = g.input('x', 'float32', [M, K]);
    const bias = seededPixels(N, 11);
    const biasName = g.weight('b', bias, [N]);
    g.output(int8MatMul(g, input, {}, 'mm', () => ({ w, K, N }), split ? Int32Array.from([7]) : undefined, format, biasName), 'y', 'float32', [M, N]);
    g.save();
    const optimized = join(dir, `mm-${split}-${format}.opt.onnx`);
    const session = await ort.InferenceSession.create(path, { graphOptimizationLevel: 'all', optimizedModelFilePath: optimized });
    const y = (await session.run({ x: new ort.Tensor('float32', x, [M, K]) })).y.data as Float32Array;
    await session.release();
    // ORT's fusion took the scale and the bias into the int8 kernel, also beside the outlier product.
    const nodes = onnxProto.onnx.ModelProto.decode(readFileSync(optimized)).graph!.node!;
    const fused = nodes.find((n) => n.opType === 'DynamicQuantizeMatMul');
    expect(fused?.input).toContain(biasName);
    let err = 0;
    let ref2 = 0;
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let ref = bias[n];
        for (let k = 0; k < K; k++) ref += x[m * K + k] * w[k * N + n];
        err += (y[m * N + n] - ref) ** 2;
        ref2 += ref * ref;
      }
    }
    // Relative RMS error: a few % for per-tensor int8 with the outlier, well under with it split
    // (a saturating kernel would be off by far more).
    const rel = Math.sqrt(err / ref2);
    expect(rel).toBeLessThan(split ? 0.015 : 0.06);
    if (split) expect(rel).toBeGreaterThan(0);
  });
});

describe('int8 towers', () => {
  const weights = generateClipWeights(ARCHS.tiny, 3);

  it('image embeddings and dense features stay within cosine 0.999 of fp32', async () => {
    const numerics = await int8Numerics(weights);
    const pixels = seededPixels(2 * 3 * S * S, 6);
    const fp32 = await runImage(weights, options, pixels, 2);
    const int8 = await runImage(weights, options, pixels, 2, { numerics });
    const dim = ARCHS.tiny.projectionDim;
    expect(minRowCosine(fp32.embeds, int8.embeds, dim)).toBeGreaterThan(0.999);
    expect(minRowCosine(fp32.dense, int8.dense, dim)).toBeGreaterThan(0.999);
    // Not the fp32 graph under another name.
    expect(maxAbsDiff(fp32.embeds, int8.embeds)).toBeGreaterThan(0);
  });

  it('the text tower and the WinCLIP window graph have int8 variants close to fp32', async () => {
    const numerics = await int8Numerics(weights);
    const t = ARCHS.tiny.text;
    const ids = BigInt64Array.from([t.bosTokenId, 10, 20, 30, t.eosTokenId, t.bosTokenId, 5, t.eosTokenId, 0, 0].map(BigInt));
    const text = async (n?: typeof numerics) => {
      const path = join(dir, `text-${count++}.onnx`);
      buildTextGraph(weights, path, n);
      const s = await ort.InferenceSession.create(path);
      const out = (await s.run({ input_ids: new ort.Tensor('int64', ids, [2, 5]) })).text_embeds.data as Float32Array;
      await s.release();
      return out;
    };
    expect(minRowCosine(await text(), await text(numerics), ARCHS.tiny.projectionDim)).toBeGreaterThan(0.999);

    const windows = async (n?: typeof numerics) => {
      const path = join(dir, `win-${count++}.onnx`);
      buildWindowGraph(weights, { imageSize: S, windowSizes: [2] }, path, n);
      const s = await ort.InferenceSession.create(path);
      const out = (await s.run({ pixel_values: new ort.Tensor('float32', seededPixels(3 * S * S, 8), [1, 3, S, S]) })).window_embeds_k2.data as Float32Array;
      await s.release();
      return out;
    };
    expect(minRowCosine(await windows(), await windows(numerics), ARCHS.tiny.projectionDim)).toBeGreaterThan(0.999);
  });

  /** The least row cosines to fp32 of the image embeddings and dense features with weights stored as `format`. */
  async function cosinesWithWeights(format: 's7' | 's8'): Promise<{ embeds: number; dense: number }> {
    const numerics = await int8Numerics(weights);
    const pixels = seededPixels(2 * 3 * S * S, 6);
    const fp32 = await runImage(weights, options, pixels, 2);
    const int8 = await runImage(weights, options, pixels, 2, { numerics: { int8: { ...numerics.int8!, weights: format } } });
    const dim = ARCHS.tiny.projectionDim;
    return { embeds: minRowCosine(fp32.embeds, int8.embeds, dim), dense: minRowCosine(fp32.dense, int8.dense, dim) };
  }

  it('7-bit weights (QUANTIZE_WEIGHTS=s7) stay close to fp32 too', async () => {
    const cos = await cosinesWithWeights('s7');
    expect(cos.embeds).toBeGreaterThan(0.998);
    expect(cos.dense).toBeGreaterThan(0.998);
  });

  it.skipIf(!VNNI)('8-bit signed weights (QUANTIZE_WEIGHTS=s8, VNNI) stay within cosine 0.999 of fp32', async () => {
    const cos = await cosinesWithWeights('s8');
    expect(cos.embeds).toBeGreaterThan(0.999);
    expect(cos.dense).toBeGreaterThan(0.999);
  });

  it('QUANTIZE=int8 graphs are cached under their own key, with int8 weights in them', async () => {
    const root = join(dir, 'cache-test');
    const folder = join(root, 'checkpoint');
    mkdirSync(folder, { recursive: true });
    writeFileSync(join(folder, 'config.json'), '{}');
    const cacheDir = join(root, 'cache');
    const fp32 = await ensureGraphs(folder, cacheDir, options, async () => weights);
    const int8 = await ensureGraphs(folder, cacheDir, { ...options, precision: 'int8' }, async () => weights);
    const s7 = await ensureGraphs(folder, cacheDir, { ...options, precision: 'int8', int8Weights: 's7' }, async () => weights);
    const s8 = await ensureGraphs(folder, cacheDir, { ...options, precision: 'int8', int8Weights: 's8' }, async () => weights);
    expect(new Set([fp32.key, int8.key, s7.key, s8.key]).size).toBe(4);
    const s8Types = onnxProto.onnx.ModelProto.decode(readFileSync(s8.imagePath)).graph!.initializer!.filter((t) => /_wq_\d+$/.test(t.name!)).map((t) => t.dataType);
    expect(new Set(s8Types)).toEqual(new Set([onnxProto.onnx.TensorProto.DataType.INT8]));
    expect(int8.built).toBe(true);
    const again = await ensureGraphs(folder, cacheDir, { ...options, precision: 'int8' }, async () => {
      throw new Error('the cached int8 graphs must be reused');
    });
    expect(again).toMatchObject({ key: int8.key, built: false });
    for (const path of [int8.imagePath, int8.textPath]) {
      const ops = onnxProto.onnx.ModelProto.decode(readFileSync(path)).graph!.node!.map((n) => n.opType);
      expect(ops).toContain('MatMulInteger');
    }
    const fp32Ops = onnxProto.onnx.ModelProto.decode(readFileSync(fp32.imagePath)).graph!.node!.map((n) => n.opType);
    expect(fp32Ops).not.toContain('MatMulInteger');
  });
});

describe('make-model --outliers', () => {
  it('scales the same LayerNorm gain channels of every block and leaves the rest of the weights alone', async () => {
    const plainDir = join(dir, 'plain');
    const outDir = join(dir, 'outliers');
    generateModel({ arch: 'tiny', seed: 4, out: plainDir });
    generateModel({ arch: 'tiny', seed: 4, out: outDir, outliers: { channels: 2, factor: 30 } });
    const plain = (await loadClipWeights(plainDir)).weights;
    const outl = (await loadClipWeights(outDir)).weights;
    const channels = outlierChannels(ARCHS.tiny.vision.width, { channels: 2, factor: 30 });
    expect(channels.length).toBe(2);
    outl.vision.blocks.forEach((b, i) => {
      for (const ln of ['ln1', 'ln2'] as const) {
        const a = plain.vision.blocks[i][ln].weight.data;
        const o = b[ln].weight.data;
        for (let c = 0; c < a.length; c++) expect(o[c]).toBeCloseTo(channels.includes(c) ? a[c] * 30 : a[c], 4);
      }
    });
    expect(Array.from(outl.vision.lnPre.weight.data)).toEqual(Array.from(plain.vision.lnPre.weight.data));
    expect(Array.from(outl.vision.blocks[0].fc1.weight.data)).toEqual(Array.from(plain.vision.blocks[0].fc1.weight.data));
  });
});
