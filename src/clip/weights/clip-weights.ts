// Finds a checkpoint's weight file, recognises its key layout (Hugging Face or open_clip) and
// maps the tensors into the canonical ClipWeights, checking every shape against the config.

import fs from 'node:fs';
import path from 'node:path';
import { readClipConfig } from '../config.ts';
import { WEIGHTS_FILES } from '../checkpoint/checkpoint-files.ts';
import { openShardedSafetensors, openTensorSource } from './safetensors.ts';
import type { TensorSource } from './tensor-source.ts';
import { openTorchCheckpoint } from './torch-checkpoint.ts';
import type { Block, ClipConfig, ClipWeights, LayerNorm, Linear, Tensor32, TextWeights, VisionWeights } from '../types.ts';

export type WeightLayout = 'hf' | 'open_clip';

/** Weight files looked for, in order of preference. */
export const WEIGHT_FILES = WEIGHTS_FILES;

/** A weights file as a name → tensor source: safetensors (single or sharded) or a PyTorch zip. */
export function openWeightFile(file: string): TensorSource {
  if (file.endsWith('.bin.index.json')) return openShardedSafetensors(file, openTorchCheckpoint);
  return /\.(bin|pt|pth)$/.test(file) ? openTorchCheckpoint(file) : openTensorSource(file);
}

/** The minimal name → tensor lookup the mapping needs (a TensorSource satisfies it). */
export interface TensorLookup {
  has(name: string): boolean;
  get(name: string): Tensor32;
  /** The file holding a tensor, for error messages. */
  fileOf?(name: string): string;
}

export interface LoadedClipWeights {
  weights: ClipWeights;
  layout: WeightLayout;
  /** Absolute paths of the files read: the config file, then the weight file(s). */
  files: string[];
}

/** A lookup over in-memory tensors (tests, the generator). */
export function lookupFromRecord(tensors: Record<string, Tensor32>, label = 'in-memory tensors'): TensorLookup {
  return {
    has: (name) => Object.hasOwn(tensors, name),
    get: (name) => {
      const t = tensors[name];
      if (!t) throw new Error(`${label}: missing tensor "${name}"`);
      return t;
    },
    fileOf: () => label,
  };
}

/** The first weight file present in the folder, in order of preference, or an error naming what it looked for. */
export function findWeightFile(folder: string): string {
  const dir = path.resolve(folder);
  for (const name of WEIGHT_FILES) {
    const file = path.join(dir, name);
    if (fs.existsSync(file)) return file;
  }
  throw new Error(`${dir}: no weight file found (looked for ${WEIGHT_FILES.join(', ')})`);
}

/** Recognises the key layout from the tensor names. */
export function detectLayout(names: string[], where: string): WeightLayout {
  const hf = names.some((n) => n.startsWith('vision_model.') || n.startsWith('text_model.'));
  const oc = names.some((n) => n.startsWith('visual.') || n === 'token_embedding.weight');
  if (hf && !oc) return 'hf';
  if (oc && !hf) return 'open_clip';
  const sample = names.slice(0, 5).join(', ');
  throw new Error(
    `${where}: cannot tell the weight layout (${hf ? 'both HF and open_clip keys' : 'neither HF nor open_clip keys'}; ` +
      `first keys: ${sample || 'none'})`,
  );
}

const shapeText = (s: number[]) => `[${s.join(', ')}]`;
const sameShape = (a: number[], b: number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

/** Reads tensors by key with a shape check; errors name the key, the file and both shapes. */
class Reader {
  constructor(private readonly lookup: TensorLookup, private readonly where: string) {}

  private fileOf(key: string): string {
    return this.lookup.fileOf?.(key) ?? this.where;
  }

  has(key: string): boolean {
    return this.lookup.has(key);
  }

  tensor(key: string, shape: number[]): Tensor32 {
    if (!this.lookup.has(key)) throw new Error(`${this.where}: missing weight "${key}"`);
    const t = this.lookup.get(key);
    if (!sameShape(t.shape, shape)) {
      throw new Error(
        `${this.fileOf(key)}: weight "${key}" has shape ${shapeText(t.shape)} but the config implies ${shapeText(shape)}`,
      );
    }
    return t;
  }

  layerNorm(prefix: string, width: number): LayerNorm {
    return { weight: this.tensor(`${prefix}.weight`, [width]), bias: this.tensor(`${prefix}.bias`, [width]) };
  }

  linear(prefix: string, out: number, inp: number): Linear {
    return { weight: this.tensor(`${prefix}.weight`, [out, inp]), bias: this.tensor(`${prefix}.bias`, [out]) };
  }

  /** A [in, out] matrix stored for `x @ W`, returned in Linear layout [out, in]. */
  transposed(key: string, inp: number, out: number): Tensor32 {
    return transpose(this.tensor(key, [inp, out]));
  }
}

export function transpose(t: Tensor32): Tensor32 {
  const [rows, cols] = t.shape;
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) out[c * rows + r] = t.data[r * cols + c];
  }
  return { shape: [cols, rows], data: out };
}

/** Rows [from, to) of a 2-D (or 1-D) tensor, sharing memory with the source. */
function rows(t: Tensor32, from: number, to: number): Tensor32 {
  const stride = t.shape.length > 1 ? t.shape.slice(1).reduce((a, b) => a * b, 1) : 1;
  return { shape: [to - from, ...t.shape.slice(1)], data: t.data.subarray(from * stride, to * stride) };
}

function hfBlock(r: Reader, p: string, width: number, mlp: number): Block {
  return {
    ln1: r.layerNorm(`${p}.layer_norm1`, width),
    q: r.linear(`${p}.self_attn.q_proj`, width, width),
    k: r.linear(`${p}.self_attn.k_proj`, width, width),
    v: r.linear(`${p}.self_attn.v_proj`, width, width),
    out: r.linear(`${p}.self_attn.out_proj`, width, width),
    ln2: r.layerNorm(`${p}.layer_norm2`, width),
    fc1: r.linear(`${p}.mlp.fc1`, mlp, width),
    fc2: r.linear(`${p}.mlp.fc2`, width, mlp),
  };
}

function openClipBlock(r: Reader, p: string, width: number, mlp: number): Block {
  // nn.MultiheadAttention keeps q, k, v stacked along dim 0 of one in-projection.
  const w = r.tensor(`${p}.attn.in_proj_weight`, [3 * width, width]);
  const b = r.tensor(`${p}.attn.in_proj_bias`, [3 * width]);
  const part = (i: number): Linear => ({ weight: rows(w, i * width, (i + 1) * width), bias: rows(b, i * width, (i + 1) * width) });
  return {
    ln1: r.layerNorm(`${p}.ln_1`, width),
    q: part(0),
    k: part(1),
    v: part(2),
    out: r.linear(`${p}.attn.out_proj`, width, width),
    ln2: r.layerNorm(`${p}.ln_2`, width),
    fc1: r.linear(`${p}.mlp.c_fc`, mlp, width),
    fc2: r.linear(`${p}.mlp.c_proj`, width, mlp),
  };
}

function blocks(r: Reader, layers: number, keyOf: (i: number) => string, probe: string, read: (p: string) => Block): Block[] {
  // A checkpoint deeper than its config would silently lose layers: refuse it.
  if (r.has(`${keyOf(layers)}.${probe}`)) {
    throw new Error(`weights hold a block "${keyOf(layers)}" beyond the ${layers} layers the config declares`);
  }
  return Array.from({ length: layers }, (_, i) => read(keyOf(i)));
}

/**
 * Maps tensors in either layout into ClipWeights, checking every shape against `config`.
 * `logit_scale` in the weights (a log value) overrides the config's scale.
 */
export function mapClipWeights(lookup: TensorLookup, config: ClipConfig, layout: WeightLayout, where = 'weights'): ClipWeights {
  const r = new Reader(lookup, where);
  const v = config.vision;
  const t = config.text;
  const dim = config.projectionDim;
  const grid = Math.floor(v.imageSize / v.patchSize);
  const visionTokens = grid * grid + 1;

  let vision: VisionWeights;
  let text: TextWeights;
  if (layout === 'hf') {
    vision = {
      patchEmbed: r.tensor('vision_model.embeddings.patch_embedding.weight', [v.width, 3, v.patchSize, v.patchSize]),
      classEmbed: r.tensor('vision_model.embeddings.class_embedding', [v.width]),
      posEmbed: r.tensor('vision_model.embeddings.position_embedding.weight', [visionTokens, v.width]),
      lnPre: r.layerNorm('vision_model.pre_layrnorm', v.width), // sic: HF's spelling
      blocks: blocks(r, v.layers, (i) => `vision_model.encoder.layers.${i}`, 'layer_norm1.weight', (p) => hfBlock(r, p, v.width, v.mlpWidth)),
      lnPost: r.layerNorm('vision_model.post_layernorm', v.width),
      proj: r.tensor('visual_projection.weight', [dim, v.width]),
    };
    text = {
      tokenEmbed: r.tensor('text_model.embeddings.token_embedding.weight', [t.vocabSize, t.width]),
      posEmbed: r.tensor('text_model.embeddings.position_embedding.weight', [t.contextLength, t.width]),
      blocks: blocks(r, t.layers, (i) => `text_model.encoder.layers.${i}`, 'layer_norm1.weight', (p) => hfBlock(r, p, t.width, t.mlpWidth)),
      lnFinal: r.layerNorm('text_model.final_layer_norm', t.width),
      proj: r.tensor('text_projection.weight', [dim, t.width]),
    };
  } else {
    vision = {
      patchEmbed: r.tensor('visual.conv1.weight', [v.width, 3, v.patchSize, v.patchSize]),
      classEmbed: r.tensor('visual.class_embedding', [v.width]),
      posEmbed: r.tensor('visual.positional_embedding', [visionTokens, v.width]),
      lnPre: r.layerNorm('visual.ln_pre', v.width),
      blocks: blocks(r, v.layers, (i) => `visual.transformer.resblocks.${i}`, 'ln_1.weight', (p) => openClipBlock(r, p, v.width, v.mlpWidth)),
      lnPost: r.layerNorm('visual.ln_post', v.width),
      proj: r.transposed('visual.proj', v.width, dim), // stored [width, dim] for x @ proj
    };
    text = {
      tokenEmbed: r.tensor('token_embedding.weight', [t.vocabSize, t.width]),
      posEmbed: r.tensor('positional_embedding', [t.contextLength, t.width]),
      blocks: blocks(r, t.layers, (i) => `transformer.resblocks.${i}`, 'ln_1.weight', (p) => openClipBlock(r, p, t.width, t.mlpWidth)),
      lnFinal: r.layerNorm('ln_final', t.width),
      proj: r.transposed('text_projection', t.width, dim),
    };
  }

  let logitScale = config.logitScale;
  if (r.has('logit_scale')) {
    const s = lookup.get('logit_scale');
    if (s.data.length !== 1) throw new Error(`${where}: logit_scale has shape ${shapeText(s.shape)}, expected a scalar`);
    logitScale = Math.exp(s.data[0]);
  }
  return { config: { ...config, logitScale }, vision, text };
}

/**
 * Loads a checkpoint folder: the weights file the resolver chose (`weightsFile`, relative to the
 * folder) or else the first by the selection rule, detects the layout from its keys, reads the
 * matching config and maps everything into ClipWeights.
 */
export async function loadClipWeights(folder: string, weightsFile?: string): Promise<LoadedClipWeights> {
  const weightFile = weightsFile ? path.resolve(folder, weightsFile) : findWeightFile(folder);
  const source = openWeightFile(weightFile);
  try {
    const layout = detectLayout(source.names(), weightFile);
    const { config, file: configFile } = readClipConfig(folder, layout);
    const weights = mapClipWeights(source, config, layout, weightFile);
    return { weights, layout, files: [configFile, ...source.files] };
  } finally {
    source.close();
  }
}
