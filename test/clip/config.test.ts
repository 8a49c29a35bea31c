import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parseHfClipConfig, parseOpenClipConfig, readClipConfig } from '../../src/clip/config.ts';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const shared = path.resolve(repoRoot, '../shared');
const reference = path.join(shared, 'clip-reference');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-config-test-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const readJson = (p: string) => JSON.parse(fs.readFileSync(p, 'utf8'));

describe.skipIf(!fs.existsSync(reference))('real Hugging Face configs', () => {
  it('parses openai/clip-vit-base-patch32, fixing the eos_token_id=2 quirk', () => {
    const json = readJson(path.join(reference, 'openai-clip-vit-base-patch32/config.json'));
    expect(json.text_config.eos_token_id).toBe(2); // the quirk this parser works around
    const c = parseHfClipConfig(json);
    expect(c.vision).toEqual({
      width: 768, layers: 12, heads: 12, mlpWidth: 3072, patchSize: 32, imageSize: 224, layerNormEps: 1e-5, act: 'quick_gelu',
    });
    expect(c.text).toEqual({
      width: 512, layers: 12, heads: 8, mlpWidth: 2048, contextLength: 77, vocabSize: 49408, layerNormEps: 1e-5,
      act: 'quick_gelu', eosTokenId: 49407, bosTokenId: 49406,
    });
    expect(c.projectionDim).toBe(512);
    expect(c.logitScale).toBeCloseTo(Math.exp(2.6592), 6);
  });

  it('parses openai/clip-vit-large-patch14 (with the old *_config_dict blocks)', () => {
    const c = readClipConfig(path.join(reference, 'openai-clip-vit-large-patch14'));
    expect(c.format).toBe('hf');
    expect(c.generated).toBeUndefined();
    expect(c.config.vision).toMatchObject({ width: 1024, layers: 24, heads: 16, mlpWidth: 4096, patchSize: 14, imageSize: 224 });
    expect(c.config.text).toMatchObject({ width: 768, layers: 12, heads: 12, mlpWidth: 3072, eosTokenId: 49407, bosTokenId: 49406 });
    expect(c.config.projectionDim).toBe(768);
  });
});

describe('Hugging Face config parsing', () => {
  it('fills missing fields with HF CLIP defaults', () => {
    const c = parseHfClipConfig({ model_type: 'clip' });
    expect(c.vision).toMatchObject({ width: 768, layers: 12, heads: 12, mlpWidth: 3072, patchSize: 32, imageSize: 224, act: 'quick_gelu' });
    expect(c.text).toMatchObject({ width: 512, layers: 12, heads: 8, mlpWidth: 2048, contextLength: 77, vocabSize: 49408 });
    expect(c.text.eosTokenId).toBe(49407);
    expect(c.projectionDim).toBe(512);
  });

  it('keeps a real eos id and lets *_config_dict override *_config', () => {
    const c = parseHfClipConfig({
      text_config: { vocab_size: 1024, eos_token_id: 1023, bos_token_id: 1022, hidden_size: 64, num_attention_heads: 4 },
      text_config_dict: { hidden_size: 32, num_attention_heads: 2 },
      vision_config: { hidden_act: 'gelu', image_size: 240, patch_size: 16 },
    });
    expect(c.text).toMatchObject({ vocabSize: 1024, eosTokenId: 1023, bosTokenId: 1022, width: 32, heads: 2 });
    expect(c.vision).toMatchObject({ act: 'gelu', imageSize: 240, patchSize: 16 });
    expect(c.text.act).toBe('quick_gelu');
  });

  it('gives clear errors for unsupported or inconsistent values', () => {
    expect(() => parseHfClipConfig({ vision_config: { hidden_act: 'gelu_new' } }, 'x/config.json')).toThrow(
      /x\/config.json vision_config: unsupported hidden_act "gelu_new"/,
    );
    expect(() => parseHfClipConfig({ text_config: { hidden_size: 100, num_attention_heads: 8 } })).toThrow(/100 is not divisible by 8 heads/);
    expect(() => parseHfClipConfig({ vision_config: { patch_size: -4 } })).toThrow(/"patch_size" must be a positive integer/);
    expect(() => parseHfClipConfig({ model_type: 'siglip' })).toThrow(/model_type is "siglip"/);
    expect(() => parseHfClipConfig([1, 2])).toThrow(/not a JSON object/);
  });
});

describe('open_clip config parsing', () => {
  // As published with open_clip ViT-B-16-plus-240 (open_clip_config.json on the Hub).
  const plus240 = {
    model_cfg: {
      embed_dim: 640,
      vision_cfg: { image_size: 240, layers: 12, width: 896, patch_size: 16 },
      text_cfg: { context_length: 77, vocab_size: 49408, width: 640, heads: 10, layers: 12 },
    },
    preprocess_cfg: { mean: [0.48145466, 0.4578275, 0.40821073], std: [0.26862954, 0.26130258, 0.27577711] },
  };

  it('derives heads and MLP width from head_width / mlp_ratio defaults; gelu, eps 1e-5', () => {
    const c = parseOpenClipConfig(plus240);
    expect(c.vision).toEqual({
      width: 896, layers: 12, heads: 14, mlpWidth: 3584, patchSize: 16, imageSize: 240, layerNormEps: 1e-5, act: 'gelu',
    });
    expect(c.text).toEqual({
      width: 640, layers: 12, heads: 10, mlpWidth: 2560, contextLength: 77, vocabSize: 49408, layerNormEps: 1e-5,
      act: 'gelu', eosTokenId: 49407, bosTokenId: 49406,
    });
    expect(c.projectionDim).toBe(640);
    expect(c.logitScale).toBe(100);
  });

  it('honours quick_gelu, head_width and mlp_ratio', () => {
    const c = parseOpenClipConfig({
      model_cfg: { ...plus240.model_cfg, quick_gelu: true, vision_cfg: { ...plus240.model_cfg.vision_cfg, head_width: 128, mlp_ratio: 2 } },
    });
    expect(c.vision).toMatchObject({ heads: 7, mlpWidth: 1792, act: 'quick_gelu' });
    expect(c.text.act).toBe('quick_gelu');
  });

  it('rejects towers it cannot run', () => {
    expect(() => parseOpenClipConfig({ model_cfg: { vision_cfg: { timm_model_name: 'vit_so400m' }, text_cfg: {} } })).toThrow(/timm vision towers/);
    expect(() => parseOpenClipConfig({ model_cfg: { vision_cfg: { layers: [3, 4, 6, 3] }, text_cfg: {} } })).toThrow(/ResNet/);
    expect(() => parseOpenClipConfig({ model_cfg: { vision_cfg: {}, text_cfg: { hf_model_name: 'roberta-base' } } })).toThrow(/text towers/);
    expect(() => parseOpenClipConfig({ model_cfg: {} })).toThrow(/expected model_cfg with vision_cfg and text_cfg/);
  });
});

describe('readClipConfig', () => {
  it('prefers the file matching the weight layout and reads the generator marker', () => {
    const dir = path.join(tmp, 'both');
    fs.mkdirSync(dir);
    fs.writeFileSync(
      path.join(dir, 'config.json'),
      JSON.stringify({ projection_dim: 256, generated_random_model: true, generated_arch: 'tiny', generated_seed: 7 }),
    );
    fs.writeFileSync(
      path.join(dir, 'open_clip_config.json'),
      JSON.stringify({ model_cfg: { embed_dim: 640, vision_cfg: {}, text_cfg: {} } }),
    );
    const hf = readClipConfig(dir, 'hf');
    expect(hf.format).toBe('hf');
    expect(hf.config.projectionDim).toBe(256);
    expect(hf.generated).toEqual({ arch: 'tiny', seed: 7 });
    const oc = readClipConfig(dir, 'open_clip');
    expect(oc.format).toBe('open_clip');
    expect(oc.file).toBe(path.join(dir, 'open_clip_config.json'));
    expect(oc.config.projectionDim).toBe(640);
    expect(oc.generated).toBeUndefined();
  });

  it('names the folder when there is no config, and the file when it is broken', () => {
    const empty = path.join(tmp, 'empty');
    fs.mkdirSync(empty);
    expect(() => readClipConfig(empty)).toThrow(/no config.json or open_clip_config.json/);
    fs.writeFileSync(path.join(empty, 'config.json'), '{ not json');
    expect(() => readClipConfig(empty)).toThrow(new RegExp(`${path.join(empty, 'config.json')}: cannot read JSON`));
  });
});
