// Random CLIP weights for the generator (random-model.ts). Every canonical tensor draws from its
// own PRNG stream, seeded by (seed, canonical name), so the values do not depend on write order
// or key layout: the same seed in both layouts holds the same weights, and tensors can be
// produced one at a time while streaming to disk (weightEntries).
import { seededOpenUnit } from '../util/rng.ts';
import type { FloatDtype, StreamedTensor } from '../clip/weights/safetensors-writer.ts';
import type { WeightLayout } from '../clip/weights/clip-weights.ts';
import type { Block, ClipConfig, ClipWeights, LayerNorm, Linear, Tensor32 } from '../clip/types.ts';

// Seeded normal draws: mulberry32 uniforms (src/util/rng.ts) + Box-Muller. Never Math.random.

/** 32-bit hash of (seed, name) that picks a tensor's own stream. */
function streamSeed(seed: number, name: string): number {
  let h = (0x811c9dc5 ^ seed) >>> 0; // FNV-1a over the seed, then the name
  h = Math.imul(h ^ (seed >>> 16), 0x01000193) >>> 0;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  // Final avalanche (murmur3 fmix32) so similar names give unrelated streams.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** n draws from N(mean, std²), deterministic in (seed, name). */
export function seededNormal(seed: number, name: string, n: number, mean = 0, std = 1): Float32Array {
  const uniform = seededOpenUnit(streamSeed(seed, name)); // in (0, 1): log() stays finite
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(uniform()));
    const a = 2 * Math.PI * uniform();
    out[i] = mean + std * r * Math.cos(a);
    if (i + 1 < n) out[i + 1] = mean + std * r * Math.sin(a);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Canonical tensors (types.ts layout) and how each key layout stores them.

interface InitSpec {
  shape: number[];
  mean: number;
  std: number;
}

/**
 * Every canonical tensor with its init, after OpenAI CLIP's initialize_parameters: attention
 * std width^-1/2, residual projections scaled down by (2 layers)^-1/2, MLP in (2 width)^-1/2,
 * patch embedding variance-preserving; layer norms 1 + noise and small random biases so
 * layout mix-ups cannot hide behind zeros.
 */
export function canonicalInits(config: ClipConfig): Map<string, InitSpec> {
  const specs = new Map<string, InitSpec>();
  const add = (name: string, shape: number[], std: number, mean = 0) => specs.set(name, { shape, mean, std });
  const ln = (p: string, w: number) => {
    add(`${p}.weight`, [w], 0.02, 1);
    add(`${p}.bias`, [w], 0.02);
  };
  const lin = (p: string, out: number, inp: number, std: number) => {
    add(`${p}.weight`, [out, inp], std);
    add(`${p}.bias`, [out], 0.01);
  };
  const tower = (p: string, width: number, layers: number, mlp: number) => {
    const attnStd = width ** -0.5;
    const projStd = attnStd * (2 * layers) ** -0.5;
    const fcStd = (2 * width) ** -0.5;
    for (let i = 0; i < layers; i++) {
      const b = `${p}.blocks.${i}`;
      ln(`${b}.ln1`, width);
      for (const x of ['q', 'k', 'v']) lin(`${b}.${x}`, width, width, attnStd);
      lin(`${b}.out`, width, width, projStd);
      ln(`${b}.ln2`, width);
      lin(`${b}.fc1`, mlp, width, fcStd);
      lin(`${b}.fc2`, width, mlp, projStd);
    }
  };
  const { vision: v, text: t, projectionDim: dim } = config;
  const grid = Math.floor(v.imageSize / v.patchSize);
  add('vision.patch_embed', [v.width, 3, v.patchSize, v.patchSize], (3 * v.patchSize * v.patchSize) ** -0.5);
  add('vision.class_embed', [v.width], v.width ** -0.5);
  add('vision.pos_embed', [grid * grid + 1, v.width], v.width ** -0.5);
  ln('vision.ln_pre', v.width);
  tower('vision', v.width, v.layers, v.mlpWidth);
  ln('vision.ln_post', v.width);
  add('vision.proj', [dim, v.width], v.width ** -0.5);
  add('text.token_embed', [t.vocabSize, t.width], 0.02);
  add('text.pos_embed', [t.contextLength, t.width], 0.01);
  tower('text', t.width, t.layers, t.mlpWidth);
  ln('text.ln_final', t.width);
  add('text.proj', [dim, t.width], t.width ** -0.5);
  add('logit_scale', [], 0, Math.log(100));
  return specs;
}

/**
 * Activation outliers as real CLIP towers have them (a few channels far above the rest): the
 * gain of `channels` LayerNorm channels (the same ones in every block's ln1 and ln2, evenly
 * spread) multiplied by `factor`, so every qkv and fc1 input carries them. A stress test for
 * int8 activations; the other tensors are unchanged.
 */
export interface OutlierSpec {
  channels: number;
  factor: number;
}

/** The channels an OutlierSpec scales in a width-`width` LayerNorm. */
export function outlierChannels(width: number, spec: OutlierSpec): number[] {
  return Array.from({ length: spec.channels }, (_, i) => Math.floor(((i + 0.5) * width) / spec.channels));
}

function canonicalValues(seed: number, name: string, spec: InitSpec, outliers?: OutlierSpec): Float32Array {
  const values = plainValues(seed, name, spec);
  if (outliers && /\.blocks\.\d+\.ln[12]\.weight$/.test(name)) {
    for (const c of outlierChannels(values.length, outliers)) values[c] *= outliers.factor;
  }
  return values;
}

function plainValues(seed: number, name: string, spec: InitSpec): Float32Array {
  const n = spec.shape.reduce((a, b) => a * b, 1);
  if (spec.std === 0) return new Float32Array(n).fill(spec.mean);
  return seededNormal(seed, name, n, spec.mean, spec.std);
}

/** The whole canonical weight set in memory (fine for tiny; the writer streams instead). */
export function generateClipWeights(config: ClipConfig, seed: number): ClipWeights {
  const specs = canonicalInits(config);
  const get = (name: string): Tensor32 => {
    const spec = specs.get(name)!;
    return { shape: spec.shape.slice(), data: canonicalValues(seed, name, spec) };
  };
  const ln = (p: string): LayerNorm => ({ weight: get(`${p}.weight`), bias: get(`${p}.bias`) });
  const lin = (p: string): Linear => ({ weight: get(`${p}.weight`), bias: get(`${p}.bias`) });
  const blocks = (p: string, layers: number): Block[] =>
    Array.from({ length: layers }, (_, i) => {
      const b = `${p}.blocks.${i}`;
      return {
        ln1: ln(`${b}.ln1`), q: lin(`${b}.q`), k: lin(`${b}.k`), v: lin(`${b}.v`), out: lin(`${b}.out`),
        ln2: ln(`${b}.ln2`), fc1: lin(`${b}.fc1`), fc2: lin(`${b}.fc2`),
      };
    });
  return {
    config: { ...config, logitScale: 100 },
    vision: {
      patchEmbed: get('vision.patch_embed'),
      classEmbed: get('vision.class_embed'),
      posEmbed: get('vision.pos_embed'),
      lnPre: ln('vision.ln_pre'),
      blocks: blocks('vision', config.vision.layers),
      lnPost: ln('vision.ln_post'),
      proj: get('vision.proj'),
    },
    text: {
      tokenEmbed: get('text.token_embed'),
      posEmbed: get('text.pos_embed'),
      blocks: blocks('text', config.text.layers),
      lnFinal: ln('text.ln_final'),
      proj: get('text.proj'),
    },
  };
}

/** A stored key: which canonical tensors it concatenates (dim 0) and whether it is transposed. */
interface KeySource {
  key: string;
  parts: string[];
  transpose?: boolean;
}

function hfKeys(config: ClipConfig): KeySource[] {
  const keys: KeySource[] = [];
  const one = (key: string, part: string) => keys.push({ key, parts: [part] });
  const both = (key: string, part: string) => {
    one(`${key}.weight`, `${part}.weight`);
    one(`${key}.bias`, `${part}.bias`);
  };
  const tower = (hf: string, c: string, layers: number) => {
    for (let i = 0; i < layers; i++) {
      const h = `${hf}.encoder.layers.${i}`;
      const b = `${c}.blocks.${i}`;
      both(`${h}.layer_norm1`, `${b}.ln1`);
      for (const x of ['q', 'k', 'v']) both(`${h}.self_attn.${x}_proj`, `${b}.${x}`);
      both(`${h}.self_attn.out_proj`, `${b}.out`);
      both(`${h}.layer_norm2`, `${b}.ln2`);
      both(`${h}.mlp.fc1`, `${b}.fc1`);
      both(`${h}.mlp.fc2`, `${b}.fc2`);
    }
  };
  one('text_model.embeddings.token_embedding.weight', 'text.token_embed');
  one('text_model.embeddings.position_embedding.weight', 'text.pos_embed');
  tower('text_model', 'text', config.text.layers);
  both('text_model.final_layer_norm', 'text.ln_final');
  one('vision_model.embeddings.class_embedding', 'vision.class_embed');
  one('vision_model.embeddings.patch_embedding.weight', 'vision.patch_embed');
  one('vision_model.embeddings.position_embedding.weight', 'vision.pos_embed');
  both('vision_model.pre_layrnorm', 'vision.ln_pre'); // sic
  tower('vision_model', 'vision', config.vision.layers);
  both('vision_model.post_layernorm', 'vision.ln_post');
  one('visual_projection.weight', 'vision.proj');
  one('text_projection.weight', 'text.proj');
  one('logit_scale', 'logit_scale');
  return keys;
}

function openClipKeys(config: ClipConfig): KeySource[] {
  const keys: KeySource[] = [];
  const one = (key: string, part: string, transpose = false) => keys.push({ key, parts: [part], transpose });
  const both = (key: string, part: string) => {
    one(`${key}.weight`, `${part}.weight`);
    one(`${key}.bias`, `${part}.bias`);
  };
  const tower = (oc: string, c: string, layers: number) => {
    for (let i = 0; i < layers; i++) {
      const o = `${oc}transformer.resblocks.${i}`;
      const b = `${c}.blocks.${i}`;
      both(`${o}.ln_1`, `${b}.ln1`);
      keys.push({ key: `${o}.attn.in_proj_weight`, parts: ['q', 'k', 'v'].map((x) => `${b}.${x}.weight`) });
      keys.push({ key: `${o}.attn.in_proj_bias`, parts: ['q', 'k', 'v'].map((x) => `${b}.${x}.bias`) });
      both(`${o}.attn.out_proj`, `${b}.out`);
      both(`${o}.ln_2`, `${b}.ln2`);
      both(`${o}.mlp.c_fc`, `${b}.fc1`);
      both(`${o}.mlp.c_proj`, `${b}.fc2`);
    }
  };
  one('positional_embedding', 'text.pos_embed');
  one('text_projection', 'text.proj', true);
  one('logit_scale', 'logit_scale');
  one('visual.class_embedding', 'vision.class_embed');
  one('visual.positional_embedding', 'vision.pos_embed');
  one('visual.proj', 'vision.proj', true);
  one('visual.conv1.weight', 'vision.patch_embed');
  both('visual.ln_pre', 'vision.ln_pre');
  tower('visual.', 'vision', config.vision.layers);
  both('visual.ln_post', 'vision.ln_post');
  tower('', 'text', config.text.layers);
  one('token_embedding.weight', 'text.token_embed');
  both('ln_final', 'text.ln_final');
  return keys;
}

/** The tensors of a checkpoint in the given layout, each produced only when written. */
export function weightEntries(config: ClipConfig, seed: number, layout: WeightLayout, dtype: FloatDtype = 'F32', outliers?: OutlierSpec): StreamedTensor[] {
  const specs = canonicalInits(config);
  const keys = layout === 'hf' ? hfKeys(config) : openClipKeys(config);
  return keys.map(({ key, parts, transpose }) => {
    const partSpecs = parts.map((p) => specs.get(p)!);
    const first = partSpecs[0].shape;
    const stacked = [partSpecs.reduce((n, s) => n + (s.shape[0] ?? 1), 0), ...first.slice(1)];
    const shape = parts.length > 1 ? stacked : transpose ? [first[1], first[0]] : first.slice();
    return {
      name: key,
      dtype,
      shape,
      produce: () => {
        const values = parts.map((p, i) => canonicalValues(seed, p, partSpecs[i], outliers));
        let data = values.length === 1 ? values[0] : concat(values);
        if (transpose) data = transposed(data, first[0], first[1]);
        return data;
      },
    };
  });
}

function concat(arrays: Float32Array[]): Float32Array {
  const out = new Float32Array(arrays.reduce((n, a) => n + a.length, 0));
  let at = 0;
  for (const a of arrays) {
    out.set(a, at);
    at += a.length;
  }
  return out;
}

function transposed(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c];
  return out;
}
