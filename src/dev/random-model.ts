// Deterministic random-weight CLIP checkpoints with real (or tiny) architectures, written as
// complete model folders (weights, config, preprocessor config, tokenizer) in Hugging Face or
// open_clip layout. Weights are untrained: they exercise the runtime, not the method.
//
// Every canonical tensor draws from its own PRNG stream, seeded by (seed, canonical name), so the
// values do not depend on write order or key layout: the same seed in both layouts holds the
// same weights, and tensors can be produced one at a time while streaming to disk.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { GENERATED_MARKER } from '../clip/config.ts';
import { writeSafetensorsStreamed, type FloatDtype, type StreamedTensor } from '../clip/weights/safetensors-writer.ts';
import type { WeightLayout } from '../clip/weights/clip-weights.ts';
import type { Block, ClipConfig, ClipWeights, LayerNorm, Linear, Tensor32 } from '../clip/types.ts';

export type ArchName = 'tiny' | 'vit-b-32' | 'vit-b-16' | 'vit-b-16-plus-240' | 'vit-l-14-336';

const CLIP_VOCAB = 49408;
/** Vocabulary of the synthetic tokenizer that ships with `tiny`. */
export const TINY_VOCAB = 1024;

function clipConfig(
  v: { width: number; layers: number; heads: number; patch: number; image: number },
  t: { width: number; layers: number; heads: number; vocab: number },
  projectionDim: number,
  act: 'quick_gelu' | 'gelu',
): ClipConfig {
  return {
    vision: {
      width: v.width, layers: v.layers, heads: v.heads, mlpWidth: 4 * v.width,
      patchSize: v.patch, imageSize: v.image, layerNormEps: 1e-5, act,
    },
    text: {
      width: t.width, layers: t.layers, heads: t.heads, mlpWidth: 4 * t.width, contextLength: 77,
      vocabSize: t.vocab, layerNormEps: 1e-5, act, eosTokenId: t.vocab - 1, bosTokenId: t.vocab - 2,
    },
    projectionDim,
    logitScale: 100,
  };
}

/** The architectures the generator knows, with their real shapes (tiny: for tests). */
export const ARCHS: Record<ArchName, ClipConfig> = {
  tiny: clipConfig(
    { width: 32, layers: 4, heads: 2, patch: 8, image: 64 },
    { width: 32, layers: 4, heads: 2, vocab: TINY_VOCAB },
    32,
    'quick_gelu',
  ),
  'vit-b-32': clipConfig(
    { width: 768, layers: 12, heads: 12, patch: 32, image: 224 },
    { width: 512, layers: 12, heads: 8, vocab: CLIP_VOCAB },
    512,
    'quick_gelu',
  ),
  'vit-b-16': clipConfig(
    { width: 768, layers: 12, heads: 12, patch: 16, image: 224 },
    { width: 512, layers: 12, heads: 8, vocab: CLIP_VOCAB },
    512,
    'quick_gelu',
  ),
  'vit-b-16-plus-240': clipConfig(
    { width: 896, layers: 12, heads: 14, patch: 16, image: 240 },
    { width: 640, layers: 12, heads: 10, vocab: CLIP_VOCAB },
    640,
    'gelu',
  ),
  'vit-l-14-336': clipConfig(
    { width: 1024, layers: 24, heads: 16, patch: 14, image: 336 },
    { width: 768, layers: 12, heads: 12, vocab: CLIP_VOCAB },
    768,
    'quick_gelu',
  ),
};

/** The layout each arch is published in (ViT-B-16-plus-240 only exists as an open_clip model). */
export const DEFAULT_LAYOUT: Record<ArchName, WeightLayout> = {
  tiny: 'hf',
  'vit-b-32': 'hf',
  'vit-b-16': 'hf',
  'vit-b-16-plus-240': 'open_clip',
  'vit-l-14-336': 'hf',
};

export function isArchName(x: string): x is ArchName {
  return Object.hasOwn(ARCHS, x);
}

// ---------------------------------------------------------------------------------------------
// Seeded normal draws: mulberry32 uniforms + Box-Muller. Never Math.random.

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
  let state = streamSeed(seed, name);
  const uniform = (): number => {
    // mulberry32
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296; // in (0, 1): log() stays finite
  };
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

function canonicalValues(seed: number, name: string, spec: InitSpec): Float32Array {
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
export function weightEntries(config: ClipConfig, seed: number, layout: WeightLayout, dtype: FloatDtype = 'F32'): StreamedTensor[] {
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
        const values = parts.map((p, i) => canonicalValues(seed, p, partSpecs[i]));
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

// ---------------------------------------------------------------------------------------------
// Synthetic CLIP-form tokenizer: byte-level BPE with `</w>` word ends, every byte symbol in the
// vocabulary (so no text is ever unknown), merges learned from a small English word list, and
// <|startoftext|>, <|endoftext|> as the two highest ids.

const BOS = '<|startoftext|>';
const EOS = '<|endoftext|>';

/** Words the merges are learned from: prompt vocabulary, inspection objects, common English. */
const MERGE_CORPUS = `
a an the of in on at for with without and or to from by is are was be this that it its as
photo photograph picture image close-up cropped bright dark blurry jpeg corrupted small large
big little good bad clean dirty new old normal abnormal anomaly anomalous anomalies detection
visual inspection object objects item surface texture industrial product part parts
flawless perfect unblemished flaw flaws defect defects defective damage damaged broken crack
cracked scratch scratches scratched hole holes dent bent cut contamination stain spot missing
color colour faulty imprint poke squeeze fabric glue print rough misplaced liquid oil thread
metal plate nut screw bottle cable capsule carpet grid hazelnut leather pill tile toothbrush
transistor wood zipper candle cashew chewing gum fryum macaroni pcb pipe
red green blue yellow black white gray grey orange purple pink brown circle square triangle
line shape shapes pattern background foreground left right top bottom center middle edge
one two three four five six seven eight nine ten first second third
i you he she we they me him her us them my your his our their what which who when where why how
not no yes all any some many much more most other such only own same so than too very can will
just should now there here then out up down over under again further once about into through
during before after above below between each few both have has had do does did doing
would could make made see look looking show shows shown taken camera light lighting view front
back side high quality low resolution detail details close far near sharp soft smooth hard
glass plastic paper steel iron copper aluminium aluminum rubber stone concrete ceramic cloth
box bag cup can jar tube wire board chip circuit component device machine tool kit
person people man woman dog cat car house tree water sky road table chair food hand
`;

/** GPT-2/CLIP byte ↔ printable-character table, in the order the real vocabulary lists it. */
export function bytesToUnicode(): string[] {
  const printable: number[] = [];
  for (let b = 33; b <= 126; b++) printable.push(b);
  for (let b = 161; b <= 172; b++) printable.push(b);
  for (let b = 174; b <= 255; b++) printable.push(b);
  const order = printable.slice();
  const chars = printable.map((b) => String.fromCharCode(b));
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    if (!printable.includes(b)) {
      order.push(b);
      chars.push(String.fromCharCode(256 + extra++));
    }
  }
  // chars[i] is the symbol of byte order[i]; the vocabulary lists symbols in this order.
  return chars;
}

/** Learns up to `maxMerges` BPE merges over the corpus words (ties broken by pair text). */
function learnMerges(corpus: string, maxMerges: number): string[][] {
  const counts = new Map<string, number>();
  for (const w of corpus.toLowerCase().match(/\p{L}+/gu) ?? []) counts.set(w, (counts.get(w) ?? 0) + 1);
  // Corpus words are ASCII, so their byte-level symbols are the letters themselves.
  const words = [...counts].map(([w, n]) => {
    const syms = [...w];
    syms[syms.length - 1] += '</w>';
    return { syms, n };
  });
  const merges: string[][] = [];
  while (merges.length < maxMerges) {
    const pairs = new Map<string, number>();
    for (const { syms, n } of words) {
      for (let i = 0; i + 1 < syms.length; i++) {
        const k = `${syms[i]} ${syms[i + 1]}`;
        pairs.set(k, (pairs.get(k) ?? 0) + n);
      }
    }
    let best: string | undefined;
    let bestN = 0;
    for (const [k, n] of pairs) {
      if (n > bestN || (n === bestN && best !== undefined && k < best)) {
        best = k;
        bestN = n;
      }
    }
    if (!best) break; // every word is a single token
    const [a, b] = best.split(' ');
    merges.push([a, b]);
    for (const w of words) {
      const next: string[] = [];
      for (let i = 0; i < w.syms.length; i++) {
        if (i + 1 < w.syms.length && w.syms[i] === a && w.syms[i + 1] === b) {
          next.push(a + b);
          i++;
        } else next.push(w.syms[i]);
      }
      w.syms = next;
    }
  }
  return merges;
}

export interface TokenizerFiles {
  'tokenizer.json': unknown;
  'tokenizer_config.json': unknown;
  'special_tokens_map.json': unknown;
}

const specialToken = (content: string) => ({ content, single_word: false, lstrip: false, rstrip: false, normalized: true });

/**
 * The three tokenizer files of a CLIP-form tokenizer with exactly `vocabSize` ids:
 * 256 byte symbols, their `</w>` forms, learned merges, unreachable filler ids if the corpus
 * runs out of merges, then BOS = vocabSize-2 and EOS = vocabSize-1.
 */
export function buildSyntheticTokenizer(vocabSize: number, contextLength = 77): TokenizerFiles {
  if (vocabSize < 514) throw new Error(`synthetic tokenizer needs at least 514 ids, got ${vocabSize}`);
  const vocab = new Map<string, number>();
  const addToken = (tok: string) => {
    if (!vocab.has(tok)) vocab.set(tok, vocab.size);
  };
  const bytes = bytesToUnicode();
  for (const c of bytes) addToken(c);
  for (const c of bytes) addToken(`${c}</w>`);
  const merges: string[] = [];
  for (const [a, b] of learnMerges(MERGE_CORPUS, vocabSize - 2 - vocab.size)) {
    if (vocab.size >= vocabSize - 2) break;
    merges.push(`${a} ${b}`);
    addToken(a + b);
  }
  // Filler ids keep the embedding table at the size the architecture asks for; BPE never emits them.
  for (let i = 0; vocab.size < vocabSize - 2; i++) addToken(`<|unused_${i}|>`);
  addToken(BOS);
  addToken(EOS);

  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [
      { id: vocabSize - 2, content: BOS, single_word: false, lstrip: false, rstrip: false, normalized: true, special: true },
      { id: vocabSize - 1, content: EOS, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
    ],
    normalizer: {
      type: 'Sequence',
      normalizers: [{ type: 'NFC' }, { type: 'Replace', pattern: { Regex: '\\s+' }, content: ' ' }, { type: 'Lowercase' }],
    },
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        {
          type: 'Split',
          pattern: { Regex: "'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+" },
          behavior: 'Removed',
          invert: true,
        },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true },
      ],
    },
    post_processor: {
      type: 'RobertaProcessing',
      sep: [EOS, vocabSize - 1],
      cls: [BOS, vocabSize - 2],
      trim_offsets: false,
      add_prefix_space: false,
    },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: EOS,
      continuing_subword_prefix: '',
      end_of_word_suffix: '</w>',
      fuse_unk: false,
      vocab: Object.fromEntries(vocab),
      merges,
    },
  };
  const tokenizerConfig = {
    add_prefix_space: false,
    bos_token: { __type: 'AddedToken', ...specialToken(BOS) },
    eos_token: { __type: 'AddedToken', ...specialToken(EOS) },
    unk_token: { __type: 'AddedToken', ...specialToken(EOS) },
    pad_token: EOS,
    clean_up_tokenization_spaces: true,
    do_lower_case: true,
    errors: 'replace',
    model_max_length: contextLength,
    tokenizer_class: 'CLIPTokenizer',
    synthetic_tokenizer: true,
  };
  const specialTokensMap = {
    bos_token: specialToken(BOS),
    eos_token: specialToken(EOS),
    unk_token: specialToken(EOS),
    pad_token: EOS,
  };
  return { 'tokenizer.json': tokenizer, 'tokenizer_config.json': tokenizerConfig, 'special_tokens_map.json': specialTokensMap };
}

// ---------------------------------------------------------------------------------------------
// Config files

const CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073];
const CLIP_STD = [0.26862954, 0.26130258, 0.27577711];

function marker(arch: ArchName, seed: number, tokenizer: string) {
  return {
    [GENERATED_MARKER]: true,
    generated_arch: arch,
    generated_seed: seed,
    generated_tokenizer: tokenizer,
    generated_note: 'random weights from scripts/make-model.ts: an untrained model, scores are meaningless',
  };
}

/** config.json for a ClipConfig, as Hugging Face writes it (the fields our parser reads). */
export function hfConfigJson(config: ClipConfig, dtype: FloatDtype = 'F32') {
  const { vision: v, text: t } = config;
  return {
    architectures: ['CLIPModel'],
    model_type: 'clip',
    projection_dim: config.projectionDim,
    logit_scale_init_value: 2.6592,
    initializer_factor: 1.0,
    torch_dtype: { F32: 'float32', F16: 'float16', BF16: 'bfloat16' }[dtype],
    text_config: {
      model_type: 'clip_text_model',
      hidden_size: t.width,
      intermediate_size: t.mlpWidth,
      num_attention_heads: t.heads,
      num_hidden_layers: t.layers,
      max_position_embeddings: t.contextLength,
      vocab_size: t.vocabSize,
      hidden_act: t.act,
      layer_norm_eps: t.layerNormEps,
      bos_token_id: t.bosTokenId,
      eos_token_id: t.eosTokenId,
      pad_token_id: t.eosTokenId,
      projection_dim: config.projectionDim,
    },
    vision_config: {
      model_type: 'clip_vision_model',
      hidden_size: v.width,
      intermediate_size: v.mlpWidth,
      num_attention_heads: v.heads,
      num_hidden_layers: v.layers,
      image_size: v.imageSize,
      patch_size: v.patchSize,
      num_channels: 3,
      hidden_act: v.act,
      layer_norm_eps: v.layerNormEps,
      projection_dim: config.projectionDim,
    },
  };
}

/** open_clip_config.json for a ClipConfig. */
export function openClipConfigJson(config: ClipConfig) {
  const { vision: v, text: t } = config;
  return {
    model_cfg: {
      embed_dim: config.projectionDim,
      ...(v.act === 'quick_gelu' ? { quick_gelu: true } : {}),
      vision_cfg: {
        image_size: v.imageSize,
        layers: v.layers,
        width: v.width,
        patch_size: v.patchSize,
        head_width: v.width / v.heads,
        mlp_ratio: v.mlpWidth / v.width,
      },
      text_cfg: {
        context_length: t.contextLength,
        vocab_size: t.vocabSize,
        width: t.width,
        heads: t.heads,
        layers: t.layers,
        mlp_ratio: t.mlpWidth / t.width,
      },
    },
    preprocess_cfg: { mean: CLIP_MEAN, std: CLIP_STD, interpolation: 'bicubic', resize_mode: 'squash' },
  };
}

function preprocessorConfigJson(imageSize: number) {
  // Whole-image resize to S x S, no crop (method.md §1); resample 3 = PIL bicubic.
  return {
    image_processor_type: 'CLIPImageProcessor',
    do_resize: true,
    size: { height: imageSize, width: imageSize },
    resample: 3,
    do_center_crop: false,
    crop_size: { height: imageSize, width: imageSize },
    do_rescale: true,
    rescale_factor: 1 / 255,
    do_normalize: true,
    image_mean: CLIP_MEAN,
    image_std: CLIP_STD,
    do_convert_rgb: true,
  };
}

// ---------------------------------------------------------------------------------------------
// Model folder

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** Real OpenAI CLIP tokenizer files, used for the full-size archs when present. */
export const REFERENCE_TOKENIZER_DIR = path.resolve(REPO_ROOT, '../shared/clip-reference/openai-clip-vit-base-patch32');
const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'] as const;

export interface GenerateOptions {
  arch: ArchName;
  seed: number;
  /** Output folder (created if needed). */
  out: string;
  /** Defaults to the arch's published layout (DEFAULT_LAYOUT). */
  layout?: WeightLayout;
  /** Storage dtype of the weights; F32 by default. */
  dtype?: FloatDtype;
  /** 'auto': the real CLIP tokenizer for 49408-token archs when available, else synthetic. */
  tokenizer?: 'auto' | 'synthetic';
  referenceTokenizerDir?: string;
}

export interface GeneratedModel {
  outDir: string;
  layout: WeightLayout;
  tokenizer: 'reference' | 'synthetic';
  files: { file: string; bytes: number }[];
  totalBytes: number;
}

export const WEIGHT_FILE_FOR: Record<WeightLayout, string> = {
  hf: 'model.safetensors',
  open_clip: 'open_clip_model.safetensors',
};

/** Regenerating over an earlier generated model is fine; clobbering a real checkpoint is not. */
function refuseToOverwriteRealModel(outDir: string): void {
  for (const name of ['config.json', 'open_clip_config.json']) {
    const file = path.join(outDir, name);
    if (!fs.existsSync(file)) continue;
    let json: unknown;
    try {
      json = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch {
      json = undefined;
    }
    if ((json as Record<string, unknown> | undefined)?.[GENERATED_MARKER] !== true) {
      throw new Error(`${file} exists and is not a generated model: refusing to overwrite ${outDir}`);
    }
  }
}

/** Writes a complete checkpoint folder with deterministic random weights. */
export function generateModel(options: GenerateOptions): GeneratedModel {
  const { arch, seed } = options;
  if (!isArchName(arch)) throw new Error(`unknown arch "${arch}" (known: ${Object.keys(ARCHS).join(', ')})`);
  if (!Number.isSafeInteger(seed)) throw new Error(`seed must be an integer, got ${seed}`);
  const config = ARCHS[arch];
  const layout = options.layout ?? DEFAULT_LAYOUT[arch];
  const dtype = options.dtype ?? 'F32';
  const outDir = path.resolve(options.out);
  fs.mkdirSync(outDir, { recursive: true });
  refuseToOverwriteRealModel(outDir);
  // A stale file of the other layout would make the folder ambiguous to the loader.
  for (const name of [...Object.values(WEIGHT_FILE_FOR), 'model.safetensors.index.json', 'config.json', 'open_clip_config.json']) {
    fs.rmSync(path.join(outDir, name), { force: true });
  }

  const files: { file: string; bytes: number }[] = [];
  const writeJson = (name: string, value: unknown) => {
    const file = path.join(outDir, name);
    const text = `${JSON.stringify(value, null, 2)}\n`;
    fs.writeFileSync(file, text);
    files.push({ file, bytes: Buffer.byteLength(text) });
  };

  const refDir = options.referenceTokenizerDir ?? REFERENCE_TOKENIZER_DIR;
  const useReference =
    (options.tokenizer ?? 'auto') === 'auto' &&
    config.text.vocabSize === CLIP_VOCAB &&
    TOKENIZER_FILES.every((f) => fs.existsSync(path.join(refDir, f)));
  const tokenizerKind = useReference ? 'reference' : 'synthetic';

  const info = marker(arch, seed, useReference ? `reference copy of ${refDir}` : 'synthetic');
  if (layout === 'hf') writeJson('config.json', { ...hfConfigJson(config, dtype), ...info });
  else writeJson('open_clip_config.json', { ...openClipConfigJson(config), ...info });
  writeJson('preprocessor_config.json', preprocessorConfigJson(config.vision.imageSize));

  if (useReference) {
    for (const name of TOKENIZER_FILES) {
      const file = path.join(outDir, name);
      fs.copyFileSync(path.join(refDir, name), file);
      fs.chmodSync(file, 0o644); // the reference files are read-only; regenerating must overwrite
      files.push({ file, bytes: fs.statSync(file).size });
    }
  } else {
    const tok = buildSyntheticTokenizer(config.text.vocabSize, config.text.contextLength);
    for (const name of TOKENIZER_FILES) writeJson(name, tok[name]);
  }

  const weightFile = path.join(outDir, WEIGHT_FILE_FOR[layout]);
  const bytes = writeSafetensorsStreamed(weightFile, weightEntries(config, seed, layout, dtype), {
    format: 'pt',
    generated_random_model: 'true',
    generated_arch: arch,
    generated_seed: String(seed),
  });
  files.push({ file: weightFile, bytes });
  return { outDir, layout, tokenizer: tokenizerKind, files, totalBytes: files.reduce((n, f) => n + f.bytes, 0) };
}
