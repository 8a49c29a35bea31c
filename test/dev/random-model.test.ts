import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parseHfClipConfig, parseOpenClipConfig, readClipConfig } from '../../src/clip/config.ts';
import {
  ARCHS,
  buildSyntheticTokenizer,
  generateClipWeights,
  generateModel,
  hfConfigJson,
  openClipConfigJson,
  seededNormal,
  TINY_VOCAB,
  weightEntries,
  type ArchName,
} from '../../src/dev/random-model.ts';
import { openSafetensors } from '../../src/clip/weights/safetensors.ts';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-generate-test-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const dir = (name: string) => path.join(tmp, name);

const filesOf = (d: string) => fs.readdirSync(d).sort();
const bytesOf = (d: string, f: string) => fs.readFileSync(path.join(d, f));

function stats(x: Float32Array): { mean: number; std: number } {
  let s = 0;
  for (const v of x) s += v;
  const mean = s / x.length;
  let q = 0;
  for (const v of x) q += (v - mean) ** 2;
  return { mean, std: Math.sqrt(q / x.length) };
}

describe('seeded random numbers', () => {
  it('are deterministic, standard normal, and differ by seed and name', () => {
    const a = seededNormal(1, 'x', 100_001);
    expect(seededNormal(1, 'x', 100_001)).toEqual(a);
    const { mean, std } = stats(a);
    expect(Math.abs(mean)).toBeLessThan(0.02);
    expect(Math.abs(std - 1)).toBeLessThan(0.02);
    expect(a.every(Number.isFinite)).toBe(true);
    expect(seededNormal(2, 'x', 10)).not.toEqual(a.subarray(0, 10));
    expect(seededNormal(1, 'y', 10)).not.toEqual(a.subarray(0, 10));
  });
});

describe('tiny model folder', () => {
  it('is byte-identical for the same seed and differs for another seed', () => {
    const one = generateModel({ arch: 'tiny', seed: 5, out: dir('a') });
    generateModel({ arch: 'tiny', seed: 5, out: dir('b') });
    generateModel({ arch: 'tiny', seed: 6, out: dir('c') });
    expect(filesOf(dir('a'))).toEqual([
      'config.json', 'model.safetensors', 'preprocessor_config.json', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json',
    ]);
    for (const f of filesOf(dir('a'))) expect(bytesOf(dir('a'), f).equals(bytesOf(dir('b'), f)), f).toBe(true);
    expect(bytesOf(dir('a'), 'model.safetensors').equals(bytesOf(dir('c'), 'model.safetensors'))).toBe(false);
    expect(bytesOf(dir('a'), 'tokenizer.json').equals(bytesOf(dir('c'), 'tokenizer.json'))).toBe(true);
    expect(one.totalBytes).toBe(filesOf(dir('a')).reduce((n, f) => n + fs.statSync(path.join(dir('a'), f)).size, 0));
    expect(one.totalBytes).toBeLessThan(5_000_000);
    expect(one.layout).toBe('hf');
    expect(one.tokenizer).toBe('synthetic');
  });

  it('marks the config as generated and describes the tiny architecture', () => {
    const c = readClipConfig(dir('a'));
    expect(c.generated).toEqual({ arch: 'tiny', seed: 5 });
    const { logitScale: _l, ...rest } = c.config;
    const { logitScale: _m, ...want } = ARCHS.tiny;
    expect(rest).toEqual(want);
    expect(ARCHS.tiny.vision).toMatchObject({ width: 32, layers: 4, heads: 2, mlpWidth: 128, patchSize: 8, imageSize: 64, act: 'quick_gelu' });
    expect(ARCHS.tiny.text).toMatchObject({ width: 32, layers: 4, heads: 2, mlpWidth: 128, contextLength: 77, vocabSize: TINY_VOCAB });
    expect(ARCHS.tiny.projectionDim).toBe(32);
    const tok = JSON.parse(bytesOf(dir('a'), 'tokenizer.json').toString());
    expect(Object.keys(tok.model.vocab)).toHaveLength(TINY_VOCAB);
    const pre = JSON.parse(bytesOf(dir('a'), 'preprocessor_config.json').toString());
    expect(pre).toMatchObject({ size: { height: 64, width: 64 }, resample: 3, do_center_crop: false });
  });

  it('writes weights with the intended init scales', () => {
    const w = generateClipWeights(ARCHS.tiny, 5);
    const q = stats(w.vision.blocks[0].q.weight.data);
    expect(Math.abs(q.std - 32 ** -0.5) / 32 ** -0.5).toBeLessThan(0.1);
    const ln = stats(w.text.blocks[1].ln1.weight.data);
    expect(Math.abs(ln.mean - 1)).toBeLessThan(0.02);
    expect(ln.std).toBeGreaterThan(0.005);
    expect(stats(w.text.tokenEmbed.data).std).toBeCloseTo(0.02, 2);
    // Different tensors draw from different streams.
    expect(w.vision.blocks[0].q.weight.data).not.toEqual(w.vision.blocks[0].k.weight.data);
    const st = openSafetensors(path.join(dir('a'), 'model.safetensors'));
    expect(Math.exp(st.get('logit_scale').data[0])).toBeCloseTo(100, 4);
    expect(st.metadata()).toMatchObject({ format: 'pt', generated_random_model: 'true', generated_arch: 'tiny', generated_seed: '5' });
    st.close();
  });

  it('writes the open_clip layout with open_clip_config.json', () => {
    const r = generateModel({ arch: 'tiny', seed: 5, out: dir('oc'), layout: 'open_clip' });
    expect(r.layout).toBe('open_clip');
    expect(filesOf(dir('oc'))).toContain('open_clip_model.safetensors');
    expect(filesOf(dir('oc'))).not.toContain('config.json');
    const c = readClipConfig(dir('oc'));
    expect(c.format).toBe('open_clip');
    expect(c.generated).toEqual({ arch: 'tiny', seed: 5 });
  });

  it('switching layout in place removes the other layout files', () => {
    generateModel({ arch: 'tiny', seed: 5, out: dir('switch'), layout: 'hf' });
    generateModel({ arch: 'tiny', seed: 5, out: dir('switch'), layout: 'open_clip' });
    expect(filesOf(dir('switch'))).not.toContain('model.safetensors');
    expect(filesOf(dir('switch'))).not.toContain('config.json');
  });

  it('refuses to overwrite a folder holding a real (non-generated) model', () => {
    fs.mkdirSync(dir('real'));
    fs.writeFileSync(path.join(dir('real'), 'config.json'), JSON.stringify({ model_type: 'clip' }));
    expect(() => generateModel({ arch: 'tiny', seed: 1, out: dir('real') })).toThrow(/not a generated model: refusing to overwrite/);
    expect(fs.readdirSync(dir('real'))).toEqual(['config.json']);
  });
});

describe('full-size architectures (shapes only: too big to write in a unit test)', () => {
  it('have the published parameter counts', () => {
    const count = (arch: ArchName, layout: 'hf' | 'open_clip') =>
      weightEntries(ARCHS[arch], 1, layout).reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
    // HF model cards / open_clip model profile table.
    expect(count('vit-b-32', 'hf')).toBe(151_277_313);
    expect(count('vit-b-16', 'hf')).toBe(149_620_737);
    expect(count('vit-l-14-336', 'hf')).toBe(427_944_193);
    expect(count('vit-b-16-plus-240', 'open_clip')).toBe(208_377_345);
    for (const arch of Object.keys(ARCHS) as ArchName[]) expect(count(arch, 'open_clip')).toBe(count(arch, 'hf'));
  });

  it('use the real HF key names and shapes', () => {
    const shapes = new Map(weightEntries(ARCHS['vit-b-16'], 1, 'hf').map((t) => [t.name, t.shape]));
    expect(shapes.get('vision_model.embeddings.patch_embedding.weight')).toEqual([768, 3, 16, 16]);
    expect(shapes.get('vision_model.embeddings.position_embedding.weight')).toEqual([197, 768]);
    expect(shapes.get('vision_model.pre_layrnorm.weight')).toEqual([768]);
    expect(shapes.get('text_model.encoder.layers.11.mlp.fc1.weight')).toEqual([2048, 512]);
    expect(shapes.get('visual_projection.weight')).toEqual([512, 768]);
    expect(shapes.get('text_projection.weight')).toEqual([512, 512]);
    expect(shapes.get('logit_scale')).toEqual([]);
    const oc = new Map(weightEntries(ARCHS['vit-b-16-plus-240'], 1, 'open_clip').map((t) => [t.name, t.shape]));
    expect(oc.get('visual.positional_embedding')).toEqual([226, 896]);
    expect(oc.get('visual.proj')).toEqual([896, 640]);
    expect(oc.get('text_projection')).toEqual([640, 640]);
    expect(oc.get('transformer.resblocks.0.attn.in_proj_weight')).toEqual([1920, 640]);
  });

  it('round-trip through the config files they are written with', () => {
    for (const arch of Object.keys(ARCHS) as ArchName[]) {
      const { logitScale: _a, ...want } = ARCHS[arch];
      const { logitScale: _b, ...hf } = parseHfClipConfig(hfConfigJson(ARCHS[arch]));
      const { logitScale: _c, ...oc } = parseOpenClipConfig(openClipConfigJson(ARCHS[arch]));
      expect(hf, arch).toEqual(want);
      expect(oc, arch).toEqual(want);
    }
    expect(ARCHS['vit-b-16-plus-240'].vision.act).toBe('gelu');
    expect(ARCHS['vit-l-14-336'].vision).toMatchObject({ width: 1024, layers: 24, heads: 16, patchSize: 14, imageSize: 336 });
  });

  it('can build a synthetic tokenizer with the full 49408-id vocabulary', () => {
    const tok = buildSyntheticTokenizer(49408)['tokenizer.json'] as any;
    const ids = Object.values(tok.model.vocab) as number[];
    expect(ids).toHaveLength(49408);
    expect(new Set(ids).size).toBe(49408);
    expect(Math.max(...ids)).toBe(49407);
    expect(tok.model.vocab['<|endoftext|>']).toBe(49407);
    expect(tok.model.vocab['<|startoftext|>']).toBe(49406);
    expect(tok.post_processor).toMatchObject({ sep: ['<|endoftext|>', 49407], cls: ['<|startoftext|>', 49406] });
  });
});

describe('make-model CLI', () => {
  const tsx = path.join(repoRoot, 'node_modules/.bin/tsx');
  const script = path.join(repoRoot, 'scripts/make-model.ts');

  it('writes a model and prints the files and total size', () => {
    const out = execFileSync(tsx, [script, '--arch', 'tiny', '--seed', '3', '--out', dir('cli'), '--layout', 'open_clip'], { encoding: 'utf8' });
    expect(out).toMatch(/wrote tiny \(seed 3, open_clip layout/);
    expect(out).toMatch(/open_clip_model\.safetensors/);
    expect(out).toMatch(/total \d+\.\d+ MB/);
    expect(readClipConfig(dir('cli')).generated).toEqual({ arch: 'tiny', seed: 3 });
  });

  it('rejects bad arguments with a usage message', () => {
    const r = spawnSync(tsx, [script, '--arch', 'vit-h-14', '--seed', '1', '--out', dir('nope')], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/unknown arch "vit-h-14"[\s\S]*usage:/);
    const s = spawnSync(tsx, [script, '--arch', 'tiny', '--out', dir('nope')], { encoding: 'utf8' });
    expect(s.status).toBe(2);
    expect(s.stderr).toMatch(/--seed is required/);
    expect(fs.existsSync(dir('nope'))).toBe(false);
  });
});
