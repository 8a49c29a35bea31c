// Build-time calibration of the int8 graphs (quantize.ts): the fp32 towers are built once more
// with every linear layer's input reported as a per-channel max |x| output and run on a few
// inputs. The maxima name each layer's outlier input channels (computed in fp32 beside the int8
// product: the default 'split' scheme) or give SmoothQuant divisors for the LayerNorm-fed layers
// ('smooth', measured as the weaker of the two on the outlier model; README "Precision (int8)"). Inputs are generated (no data ships with the service): smooth colour fields with
// edges and noise in CLIP's normalisation for the image tower, random token sequences for the
// text tower. The outlier channels CLIP towers have are channels of the model, present whatever
// the image, which is what the calibration has to find; `images` lets a caller use real ones.
// Runs ONNX Runtime on the calling thread: only while graphs are built, before serving.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { seededRandom } from '../../util/rng.ts';
import { CLIP_MEAN, CLIP_STD } from '../input/preprocess.ts';
import type { ClipWeights, LayerNorm } from '../types.ts';
import type { GraphBuilder } from './graph-builder.ts';
import { buildImageGraph } from './image-graph.ts';
import { buildTextGraph } from './text-graph.ts';
import { channelAbsMax, outlierChannelsOf, smoothingScales, type Numerics } from './quantize.ts';
import { qkvWeightKey, transpose2d } from './transformer-ops.ts';


/** Generated calibration images [count, 3, S, S] in CLIP normalisation: gradients, a disc, a bar, noise. */
export function calibrationImages(size: number, count: number, seed = 7): Float32Array {
  const rand = seededRandom(seed);
  const plane = size * size;
  const out = new Float32Array(count * 3 * plane);
  for (let n = 0; n < count; n++) {
    const base = [rand(), rand(), rand()];
    const grad = [rand() - 0.5, rand() - 0.5, rand() - 0.5];
    const disc = { x: rand() * size, y: rand() * size, r: (0.1 + 0.3 * rand()) * size, c: [rand(), rand(), rand()] };
    const bar = { y: rand() * size, h: 2 + rand() * size * 0.05, c: [rand(), rand(), rand()] };
    const noise = 0.02 + 0.1 * rand();
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const inDisc = (x - disc.x) ** 2 + (y - disc.y) ** 2 < disc.r ** 2;
        const inBar = Math.abs(y - bar.y) < bar.h;
        for (let c = 0; c < 3; c++) {
          let v = base[c] + grad[c] * ((x + y) / size);
          if (inDisc) v = disc.c[c];
          if (inBar) v = bar.c[c];
          v = Math.min(1, Math.max(0, v + noise * (rand() - 0.5)));
          out[(n * 3 + c) * plane + y * size + x] = (v - CLIP_MEAN[c]) / CLIP_STD[c];
        }
      }
    }
  }
  return out;
}

/** Random token sequences [count, length]: start token, random ids, end-of-text, padding. */
function calibrationTokens(weights: ClipWeights, count: number, seed = 11): { ids: BigInt64Array; length: number } {
  const t = weights.config.text;
  const rand = seededRandom(seed);
  const length = Math.min(24, t.contextLength);
  const ids = new BigInt64Array(count * length);
  for (let n = 0; n < count; n++) {
    const words = 3 + Math.floor(rand() * (length - 5));
    for (let i = 0; i < length; i++) {
      let id: number;
      if (i === 0) id = t.bosTokenId;
      else if (i <= words) id = 1 + Math.floor(rand() * (Math.min(t.bosTokenId, t.eosTokenId) - 1));
      else id = t.eosTokenId;
      ids[n * length + i] = BigInt(id);
    }
  }
  return { ids, length };
}

type Probes = { key: object; output: string }[];

/** A calibration graph's probes: every linear layer's input, as a per-channel max |x| output. */
function probing(): { numerics: Numerics; probes: Probes; add: (g: GraphBuilder) => void } {
  const pending: { key: object; value: string }[] = [];
  const probes: Probes = [];
  return {
    numerics: { probeInput: (key, value) => pending.push({ key, value }) },
    probes,
    add: (g) =>
      pending.forEach(({ key, value }, i) => {
        const output = `probe_${i}`;
        g.output(channelAbsMax(g, value, 3), output, 'float32', ['channels']);
        probes.push({ key, output });
      }),
  };
}

/** Per-channel max |x| over `feeds` runs of a probed graph, by weight (a weight fed on two paths takes both). */
async function runProbes(path: string, probes: Probes, feeds: Record<string, ort.Tensor>[], into: Map<object, Float32Array>): Promise<void> {
  const session = await ort.InferenceSession.create(path, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  try {
    for (const feed of feeds) {
      const out = await session.run(feed);
      for (const { key, output } of probes) {
        const got = out[output].data as Float32Array;
        const acc = into.get(key);
        if (!acc) into.set(key, Float32Array.from(got));
        else for (let i = 0; i < got.length; i++) acc[i] = Math.max(acc[i], got[i]);
      }
    }
  } finally {
    await session.release();
  }
}

/** Divisors per LayerNorm feeding a linear layer, from its calibrated maxima and the weights it feeds. */
function smoothingFor(weights: ClipWeights, maxima: Map<object, Float32Array>): WeakMap<LayerNorm, Float32Array> {
  const smoothing = new WeakMap<LayerNorm, Float32Array>();
  for (const block of [...weights.vision.blocks, ...weights.text.blocks]) {
    const width = block.q.weight.shape[1];
    const a1 = maxima.get(qkvWeightKey(block));
    if (a1) {
      // Row k of the fused [W, 3W] qkv weight is row k of each of q, k, v transposed.
      const rowMax = new Float32Array(width);
      for (const lin of [block.q, block.k, block.v]) {
        const t = transpose2d(lin.weight);
        for (let k = 0; k < width; k++) for (let n = 0; n < width; n++) rowMax[k] = Math.max(rowMax[k], Math.abs(t[k * width + n]));
      }
      smoothing.set(block.ln1, smoothingScales(a1, rowMax, width, 1));
    }
    const a2 = maxima.get(block.fc1.weight);
    if (a2) {
      const [out, inp] = block.fc1.weight.shape;
      smoothing.set(block.ln2, smoothingScales(a2, transpose2d(block.fc1.weight), inp, out));
    }
  }
  return smoothing;
}

/** Outlier input channels per weight, from the maxima (divided by the smoothing where there is one). */
function outliersFor(weights: ClipWeights, maxima: Map<object, Float32Array>, smoothing: WeakMap<LayerNorm, Float32Array>): WeakMap<object, Int32Array> {
  const outliers = new WeakMap<object, Int32Array>();
  for (const block of [...weights.vision.blocks, ...weights.text.blocks]) {
    const inputs: [object, LayerNorm | undefined][] = [
      [qkvWeightKey(block), block.ln1],
      [block.out.weight, undefined],
      [block.fc1.weight, block.ln2],
      [block.fc2.weight, undefined],
    ];
    for (const [key, ln] of inputs) {
      const a = maxima.get(key);
      if (!a) continue;
      const s = ln ? smoothing.get(ln) : undefined;
      const found = outlierChannelsOf(s ? a.map((v, i) => v / s[i]) : a);
      if (found.length) outliers.set(key, found);
    }
  }
  return outliers;
}

/** smooth: SmoothQuant scales folded into the LayerNorms; split: outlier channels in fp32 beside the int8 product. */
export type Int8Scheme = 'smooth' | 'split' | 'smooth+split';

export interface CalibrationOptions {
  scheme?: Int8Scheme;
  /** Calibration images [count, 3, S, S] at the checkpoint's input size, normalised; generated when absent. */
  images?: { data: Float32Array; count: number };
}

const DEFAULT_SCHEME: Int8Scheme = 'split';

const calibrated = new WeakMap<ClipWeights, Promise<Numerics>>();

/** The int8 numerics for a checkpoint's towers: calibrated once per loaded weights. */
export function int8Numerics(weights: ClipWeights, options: CalibrationOptions = {}): Promise<Numerics> {
  let p = options.scheme ? undefined : calibrated.get(weights);
  if (!p) {
    p = calibrate(weights, options);
    if (!options.scheme) calibrated.set(weights, p);
  }
  return p;
}

async function calibrate(weights: ClipWeights, options: CalibrationOptions): Promise<Numerics> {
  const dir = mkdtempSync(join(tmpdir(), 'int8-calibration-'));
  try {
    const maxima = new Map<object, Float32Array>();
    const v = weights.config.vision;
    const S = v.imageSize;
    const images = options.images ?? { data: calibrationImages(S, 4), count: 4 };
    const image = probing();
    const imagePath = join(dir, 'image.onnx');
    // The tower's own path (a one-layer dense path is the least it can have), every token through the last block.
    const graphOptions = { imageSize: S, denseLayers: [v.layers], denseStart: v.layers, denseAttention: 'vv' as const };
    buildImageGraph(weights, graphOptions, imagePath, { numerics: image.numerics, extraOutputs: image.add, fullLastBlock: true });
    const plane = 3 * S * S;
    const imageFeeds = Array.from({ length: images.count }, (_, n) => ({
      pixel_values: new ort.Tensor('float32', images.data.subarray(n * plane, (n + 1) * plane), [1, 3, S, S]),
    }));
    await runProbes(imagePath, image.probes, imageFeeds, maxima);

    const text = probing();
    const textPath = join(dir, 'text.onnx');
    buildTextGraph(weights, textPath, text.numerics, text.add);
    const { ids, length } = calibrationTokens(weights, 8);
    await runProbes(textPath, text.probes, [{ input_ids: new ort.Tensor('int64', ids, [8, length]) }], maxima);
    const scheme = options.scheme ?? DEFAULT_SCHEME;
    const smoothing = scheme === 'split' ? new WeakMap<LayerNorm, Float32Array>() : smoothingFor(weights, maxima);
    const outliers = scheme === 'smooth' ? undefined : outliersFor(weights, maxima, smoothing);
    return { int8: { smoothing, outliers } };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
