// Deterministic random-weight CLIP checkpoints with real (or tiny) architectures, written as
// complete model folders (weights, config, preprocessor config, tokenizer) in Hugging Face or
// open_clip layout. Weights are untrained: they exercise the runtime, not the method.
//
// The same seed gives the same weights in both layouts. The parts: architectures.ts (the config
// tables), random-weights.ts (the seeded tensors and their key layouts), synthetic-tokenizer.ts
// (a tokenizer for the small vocabularies); this file writes the config files and the folder,
// and is the generator's API (the parts' public names are re-exported here).

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { GENERATED_MARKER } from '../clip/config.ts';
import { writeSafetensorsStreamed, type FloatDtype } from '../clip/weights/safetensors-writer.ts';
import type { WeightLayout } from '../clip/weights/clip-weights.ts';
import type { ClipConfig } from '../clip/types.ts';
import { ARCHS, CLIP_VOCAB, DEFAULT_LAYOUT, isArchName, type ArchName } from './architectures.ts';
import { weightEntries, type OutlierSpec } from './random-weights.ts';
import { buildSyntheticTokenizer } from './synthetic-tokenizer.ts';

export { ARCHS, DEFAULT_LAYOUT, isArchName, TINY_VOCAB, type ArchName } from './architectures.ts';
export { canonicalInits, generateClipWeights, outlierChannels, seededNormal, weightEntries, type OutlierSpec } from './random-weights.ts';
export { buildSyntheticTokenizer, bytesToUnicode, type TokenizerFiles } from './synthetic-tokenizer.ts';

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
  /** LayerNorm gain outliers in every block (int8 stress test, random-weights.ts). */
  outliers?: OutlierSpec;
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

  const info = {
    ...marker(arch, seed, useReference ? `reference copy of ${refDir}` : 'synthetic'),
    ...(options.outliers ? { generated_outliers: options.outliers } : {}),
  };
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
  const bytes = writeSafetensorsStreamed(weightFile, weightEntries(config, seed, layout, dtype, options.outliers), {
    format: 'pt',
    generated_random_model: 'true',
    generated_arch: arch,
    generated_seed: String(seed),
    ...(options.outliers ? { generated_outliers: `${options.outliers.channels}x${options.outliers.factor}` } : {}),
  });
  files.push({ file: weightFile, bytes });
  return { outDir, layout, tokenizer: tokenizerKind, files, totalBytes: files.reduce((n, f) => n + f.bytes, 0) };
}
