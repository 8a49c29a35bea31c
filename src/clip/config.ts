// Turns a checkpoint's configuration file (Hugging Face `config.json` or open_clip's
// `open_clip_config.json`) into the canonical ClipConfig. Sizes come from here; weights.ts
// cross-checks them against the tensor shapes.

import fs from 'node:fs';
import path from 'node:path';
import type { Activation, ClipConfig, TextConfig, VisionConfig } from './types.ts';

export type ConfigFormat = 'hf' | 'open_clip';

/** What the generator (generate.ts) stamps into a config so the service can say "untrained". */
export interface GeneratedModelInfo {
  arch: string;
  seed: number;
}

export interface CheckpointConfig {
  config: ClipConfig;
  format: ConfigFormat;
  /** Absolute path of the file the config was read from. */
  file: string;
  /** Present when the checkpoint holds random weights from the generator. */
  generated?: GeneratedModelInfo;
}

export const HF_CONFIG_FILE = 'config.json';
export const OPEN_CLIP_CONFIG_FILE = 'open_clip_config.json';

/** The marker keys the generator writes at the top level of the config file. */
export const GENERATED_MARKER = 'generated_random_model';

type Json = Record<string, unknown>;

function isObject(x: unknown): x is Json {
  return x !== null && typeof x === 'object' && !Array.isArray(x);
}

/** A positive integer field, or its default when absent/null. */
function int(obj: Json, key: string, fallback: number | undefined, where: string): number {
  const v = obj[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
    throw new Error(`${where}: "${key}" must be a positive integer, got ${JSON.stringify(obj[key])}`);
  }
  return v;
}

function num(obj: Json, key: string, fallback: number, where: string): number {
  const v = obj[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw new Error(`${where}: "${key}" must be a number, got ${JSON.stringify(obj[key])}`);
  }
  return v;
}

function activation(name: unknown, where: string): Activation {
  if (name === 'quick_gelu' || name === 'gelu') return name;
  throw new Error(`${where}: unsupported hidden_act ${JSON.stringify(name)} (supported: quick_gelu, gelu)`);
}

function checkHeads(width: number, heads: number, where: string): void {
  if (width % heads !== 0) throw new Error(`${where}: width ${width} is not divisible by ${heads} heads`);
}

/**
 * HF text configs from the transformers 4.x era carry eos_token_id 2 and bos_token_id 0 (a known
 * quirk: real CLIP ids are 49407/49406). For those, as in HF's CLIPTextTransformer, the EOT is
 * the highest id of the vocabulary and BOS the one below it.
 */
function clipSpecialIds(eos: unknown, bos: unknown, vocabSize: number): { eosTokenId: number; bosTokenId: number } {
  const usable = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x) && x >= 3 && x < vocabSize;
  return {
    eosTokenId: usable(eos) ? eos : vocabSize - 1,
    bosTokenId: usable(bos) ? bos : vocabSize - 2,
  };
}

// HF CLIPTextConfig / CLIPVisionConfig / CLIPConfig defaults (transformers' configuration_clip.py).
const HF_TEXT_DEFAULTS = {
  vocab_size: 49408, hidden_size: 512, intermediate_size: 2048, num_hidden_layers: 12,
  num_attention_heads: 8, max_position_embeddings: 77, hidden_act: 'quick_gelu', layer_norm_eps: 1e-5,
};
const HF_VISION_DEFAULTS = {
  hidden_size: 768, intermediate_size: 3072, num_hidden_layers: 12, num_attention_heads: 12,
  image_size: 224, patch_size: 32, hidden_act: 'quick_gelu', layer_norm_eps: 1e-5,
};
const HF_PROJECTION_DIM = 512;
const HF_LOGIT_SCALE_INIT = 2.6592;

/** Parses a Hugging Face CLIP config.json object. `where` names the file in errors. */
export function parseHfClipConfig(json: unknown, where = HF_CONFIG_FILE): ClipConfig {
  if (!isObject(json)) throw new Error(`${where}: not a JSON object`);
  if (json.model_type !== undefined && json.model_type !== 'clip') {
    throw new Error(`${where}: model_type is ${JSON.stringify(json.model_type)}, expected "clip"`);
  }
  // Old configs keep overrides in *_config_dict; transformers applies them over *_config.
  const t: Json = { ...(isObject(json.text_config) ? json.text_config : {}), ...(isObject(json.text_config_dict) ? json.text_config_dict : {}) };
  const v: Json = { ...(isObject(json.vision_config) ? json.vision_config : {}), ...(isObject(json.vision_config_dict) ? json.vision_config_dict : {}) };
  const tw = `${where} text_config`;
  const vw = `${where} vision_config`;
  const d = HF_TEXT_DEFAULTS;
  const vocabSize = int(t, 'vocab_size', d.vocab_size, tw);
  const text: TextConfig = {
    width: int(t, 'hidden_size', d.hidden_size, tw),
    layers: int(t, 'num_hidden_layers', d.num_hidden_layers, tw),
    heads: int(t, 'num_attention_heads', d.num_attention_heads, tw),
    mlpWidth: int(t, 'intermediate_size', d.intermediate_size, tw),
    contextLength: int(t, 'max_position_embeddings', d.max_position_embeddings, tw),
    vocabSize,
    layerNormEps: num(t, 'layer_norm_eps', d.layer_norm_eps, tw),
    act: activation(t.hidden_act ?? d.hidden_act, tw),
    ...clipSpecialIds(t.eos_token_id, t.bos_token_id, vocabSize),
  };
  const dv = HF_VISION_DEFAULTS;
  const vision: VisionConfig = {
    width: int(v, 'hidden_size', dv.hidden_size, vw),
    layers: int(v, 'num_hidden_layers', dv.num_hidden_layers, vw),
    heads: int(v, 'num_attention_heads', dv.num_attention_heads, vw),
    mlpWidth: int(v, 'intermediate_size', dv.intermediate_size, vw),
    patchSize: int(v, 'patch_size', dv.patch_size, vw),
    imageSize: int(v, 'image_size', dv.image_size, vw),
    layerNormEps: num(v, 'layer_norm_eps', dv.layer_norm_eps, vw),
    act: activation(v.hidden_act ?? dv.hidden_act, vw),
  };
  if (v.num_channels !== undefined && v.num_channels !== 3) {
    throw new Error(`${vw}: num_channels ${JSON.stringify(v.num_channels)} is not supported (RGB only)`);
  }
  checkHeads(text.width, text.heads, tw);
  checkHeads(vision.width, vision.heads, vw);
  return {
    vision,
    text,
    projectionDim: int(json, 'projection_dim', HF_PROJECTION_DIM, where),
    logitScale: Math.exp(num(json, 'logit_scale_init_value', HF_LOGIT_SCALE_INIT, where)),
  };
}

/**
 * Parses open_clip's open_clip_config.json (or a bare model config). open_clip ViTs use
 * LayerNorm eps 1e-5, exact GELU unless `quick_gelu` is set, head width 64 and MLP ratio 4 by
 * default; the text tower's head count is explicit.
 */
export function parseOpenClipConfig(json: unknown, where = OPEN_CLIP_CONFIG_FILE): ClipConfig {
  if (!isObject(json)) throw new Error(`${where}: not a JSON object`);
  const m = isObject(json.model_cfg) ? json.model_cfg : json;
  if (!isObject(m.vision_cfg) || !isObject(m.text_cfg)) {
    throw new Error(`${where}: expected model_cfg with vision_cfg and text_cfg`);
  }
  const vc = m.vision_cfg;
  const tc = m.text_cfg;
  const vw = `${where} vision_cfg`;
  const tw = `${where} text_cfg`;
  if (vc.timm_model_name) throw new Error(`${vw}: timm vision towers (${String(vc.timm_model_name)}) are not supported`);
  if (tc.hf_model_name) throw new Error(`${tw}: Hugging Face text towers (${String(tc.hf_model_name)}) are not supported`);
  if (Array.isArray(vc.layers)) throw new Error(`${vw}: ResNet vision towers (layers as a list) are not supported`);
  const act: Activation = m.quick_gelu === true ? 'quick_gelu' : 'gelu';
  const eps = 1e-5;

  const vWidth = int(vc, 'width', 768, vw);
  const headWidth = int(vc, 'head_width', 64, vw);
  checkHeads(vWidth, headWidth, `${vw} (head_width)`);
  const vision: VisionConfig = {
    width: vWidth,
    layers: int(vc, 'layers', 12, vw),
    heads: vWidth / headWidth,
    mlpWidth: Math.round(vWidth * num(vc, 'mlp_ratio', 4, vw)),
    patchSize: int(vc, 'patch_size', 16, vw),
    imageSize: int(vc, 'image_size', 224, vw),
    layerNormEps: eps,
    act,
  };

  const tWidth = int(tc, 'width', 512, tw);
  const vocabSize = int(tc, 'vocab_size', 49408, tw);
  const text: TextConfig = {
    width: tWidth,
    layers: int(tc, 'layers', 12, tw),
    heads: int(tc, 'heads', 8, tw),
    mlpWidth: Math.round(tWidth * num(tc, 'mlp_ratio', 4, tw)),
    contextLength: int(tc, 'context_length', 77, tw),
    vocabSize,
    layerNormEps: eps,
    act,
    // open_clip's tokenizer: <start_of_text> = vocab-2, <end_of_text> = vocab-1.
    eosTokenId: vocabSize - 1,
    bosTokenId: vocabSize - 2,
  };
  checkHeads(text.width, text.heads, tw);
  return {
    vision,
    text,
    projectionDim: int(m, 'embed_dim', 512, where),
    // open_clip configs carry no init value; the weights' logit_scale normally replaces this.
    logitScale: 100,
  };
}

function generatedInfo(json: unknown): GeneratedModelInfo | undefined {
  if (!isObject(json) || json[GENERATED_MARKER] !== true) return undefined;
  return { arch: String(json.generated_arch ?? 'unknown'), seed: Number(json.generated_seed ?? NaN) };
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file}: cannot read JSON (${(e as Error).message})`);
  }
}

/**
 * Reads the config of a checkpoint folder. With both files present, `prefer` (the weight
 * layout found) picks which one describes the weights.
 */
export function readClipConfig(folder: string, prefer: ConfigFormat = 'hf'): CheckpointConfig {
  const hfFile = path.resolve(folder, HF_CONFIG_FILE);
  const ocFile = path.resolve(folder, OPEN_CLIP_CONFIG_FILE);
  const hasHf = fs.existsSync(hfFile);
  const hasOc = fs.existsSync(ocFile);
  if (!hasHf && !hasOc) {
    throw new Error(`${path.resolve(folder)}: no ${HF_CONFIG_FILE} or ${OPEN_CLIP_CONFIG_FILE} found`);
  }
  const format: ConfigFormat = hasHf && hasOc ? prefer : hasHf ? 'hf' : 'open_clip';
  const file = format === 'hf' ? hfFile : ocFile;
  const json = readJson(file);
  const config = format === 'hf' ? parseHfClipConfig(json, file) : parseOpenClipConfig(json, file);
  const generated = generatedInfo(json);
  return generated ? { config, format, file, generated } : { config, format, file };
}
