import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ARCHS, generateClipWeights, generateModel } from '../../../src/dev/random-model.ts';
import { openSafetensors } from '../../../src/clip/weights/safetensors.ts';
import { writeSafetensors } from '../../../src/clip/weights/safetensors-writer.ts';
import { detectLayout, findWeightFile, loadClipWeights, lookupFromRecord, mapClipWeights } from '../../../src/clip/weights/clip-weights.ts';
import type { ClipWeights, Tensor32 } from '../../../src/clip/types.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-weights-test-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const dir = (name: string) => path.join(tmp, name);
const SEED = 11;

/** Every tensor of a ClipWeights under a readable path, for whole-model comparisons. */
function flatten(w: ClipWeights): Map<string, Tensor32> {
  const out = new Map<string, Tensor32>();
  const walk = (prefix: string, x: unknown) => {
    if (x && typeof x === 'object' && 'data' in x && 'shape' in x) out.set(prefix, x as Tensor32);
    else if (Array.isArray(x)) x.forEach((v, i) => walk(`${prefix}.${i}`, v));
    else if (x && typeof x === 'object') for (const [k, v] of Object.entries(x)) if (k !== 'config') walk(prefix ? `${prefix}.${k}` : k, v);
  };
  walk('', w);
  return out;
}

function expectSameWeights(a: ClipWeights, b: ClipWeights): void {
  const fa = flatten(a);
  const fb = flatten(b);
  expect([...fa.keys()]).toEqual([...fb.keys()]);
  const differing: string[] = [];
  for (const [k, t] of fa) {
    const u = fb.get(k)!;
    const same = t.shape.join() === u.shape.join() && t.data.length === u.data.length && t.data.every((x, i) => Object.is(x, u.data[i]));
    if (!same) differing.push(k);
  }
  expect(differing).toEqual([]);
}

/** Copies a folder's weight tensors (minus some) plus its config into a new folder, with edits. */
function rewrite(from: string, to: string, opts: { drop?: string[]; config?: (c: any) => void } = {}) {
  fs.mkdirSync(to, { recursive: true });
  const st = openSafetensors(path.join(from, 'model.safetensors'));
  const tensors: Record<string, Tensor32> = {};
  for (const n of st.names()) if (!opts.drop?.includes(n)) tensors[n] = st.get(n);
  st.close();
  writeSafetensors(path.join(to, 'model.safetensors'), tensors);
  const config = JSON.parse(fs.readFileSync(path.join(from, 'config.json'), 'utf8'));
  opts.config?.(config);
  fs.writeFileSync(path.join(to, 'config.json'), JSON.stringify(config));
}

beforeAll(() => {
  generateModel({ arch: 'tiny', seed: SEED, out: dir('hf'), layout: 'hf' });
  generateModel({ arch: 'tiny', seed: SEED, out: dir('oc'), layout: 'open_clip' });
});

describe('layout mapping', () => {
  it('maps the HF and open_clip files of one seed to identical canonical weights', async () => {
    const hf = await loadClipWeights(dir('hf'));
    const oc = await loadClipWeights(dir('oc'));
    expect(hf.layout).toBe('hf');
    expect(oc.layout).toBe('open_clip');
    expect(hf.files).toEqual([path.join(dir('hf'), 'config.json'), path.join(dir('hf'), 'model.safetensors')]);
    expect(oc.files).toEqual([path.join(dir('oc'), 'open_clip_config.json'), path.join(dir('oc'), 'open_clip_model.safetensors')]);
    expectSameWeights(hf.weights, oc.weights);
    // ...and both equal what the generator meant to write.
    expectSameWeights(hf.weights, generateClipWeights(ARCHS.tiny, SEED));
    expect(hf.weights.config.logitScale).toBeCloseTo(100, 4);
    expect(oc.weights.config.logitScale).toBeCloseTo(100, 4);
    const { logitScale: _a, ...hfRest } = hf.weights.config;
    const { logitScale: _b, ...ocRest } = oc.weights.config;
    expect(hfRest).toEqual(ocRest);
  });

  it('splits open_clip in_proj into q, k, v and transposes the projections', async () => {
    const { weights } = await loadClipWeights(dir('oc'));
    const st = openSafetensors(path.join(dir('oc'), 'open_clip_model.safetensors'));
    const w = 32;
    const inProj = st.get('visual.transformer.resblocks.2.attn.in_proj_weight');
    const inBias = st.get('visual.transformer.resblocks.2.attn.in_proj_bias');
    const block = weights.vision.blocks[2];
    expect(block.q.weight.shape).toEqual([w, w]);
    expect(Array.from(block.k.weight.data)).toEqual(Array.from(inProj.data.subarray(w * w, 2 * w * w)));
    expect(Array.from(block.v.bias!.data)).toEqual(Array.from(inBias.data.subarray(2 * w, 3 * w)));
    const rawProj = st.get('visual.proj'); // [width, dim]
    expect(rawProj.shape).toEqual([32, 32]);
    expect(weights.vision.proj.data[3 * 32 + 5]).toBe(rawProj.data[5 * 32 + 3]);
    st.close();
  });

  it('maps an in-memory lookup the same way (pure function)', () => {
    const st = openSafetensors(path.join(dir('hf'), 'model.safetensors'));
    const record: Record<string, Tensor32> = {};
    for (const n of st.names()) record[n] = st.get(n);
    st.close();
    const mapped = mapClipWeights(lookupFromRecord(record), ARCHS.tiny, 'hf');
    expectSameWeights(mapped, generateClipWeights(ARCHS.tiny, SEED));
  });

  it('reads fp16 checkpoints, still identical across layouts', async () => {
    generateModel({ arch: 'tiny', seed: SEED, out: dir('hf16'), layout: 'hf', dtype: 'F16' });
    generateModel({ arch: 'tiny', seed: SEED, out: dir('oc16'), layout: 'open_clip', dtype: 'F16' });
    const hf = (await loadClipWeights(dir('hf16'))).weights;
    expectSameWeights(hf, (await loadClipWeights(dir('oc16'))).weights);
    const exact = generateClipWeights(ARCHS.tiny, SEED).text.tokenEmbed.data;
    const half = hf.text.tokenEmbed.data;
    expect(half).not.toEqual(exact);
    expect(half.every((x, i) => Math.abs(x - exact[i]) <= Math.abs(exact[i]) * 2 ** -11 + 2 ** -24)).toBe(true);
  });

  it('loads a sharded HF checkpoint', async () => {
    const sharded = dir('sharded');
    fs.mkdirSync(sharded);
    fs.copyFileSync(path.join(dir('hf'), 'config.json'), path.join(sharded, 'config.json'));
    const st = openSafetensors(path.join(dir('hf'), 'model.safetensors'));
    const names = st.names();
    const shards: Record<string, Tensor32>[] = [{}, {}];
    const weightMap: Record<string, string> = {};
    names.forEach((n) => {
      const i = n.startsWith('vision_model.') ? 1 : 0;
      shards[i][n] = st.get(n);
      weightMap[n] = `model-0000${i + 1}-of-00002.safetensors`;
    });
    st.close();
    shards.forEach((s, i) => writeSafetensors(path.join(sharded, `model-0000${i + 1}-of-00002.safetensors`), s));
    fs.writeFileSync(path.join(sharded, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
    const loaded = await loadClipWeights(sharded);
    expect(loaded.files).toHaveLength(3);
    expectSameWeights(loaded.weights, generateClipWeights(ARCHS.tiny, SEED));
  });
});

describe('errors', () => {
  it('names a missing key and the file', async () => {
    rewrite(dir('hf'), dir('missing'), { drop: ['vision_model.post_layernorm.bias'] });
    await expect(loadClipWeights(dir('missing'))).rejects.toThrow(
      `${path.join(dir('missing'), 'model.safetensors')}: missing weight "vision_model.post_layernorm.bias"`,
    );
  });

  it('names the key and both shapes when the config disagrees with the tensors', async () => {
    rewrite(dir('hf'), dir('mlp'), { config: (c) => (c.vision_config.intermediate_size = 64) });
    await expect(loadClipWeights(dir('mlp'))).rejects.toThrow(
      /weight "vision_model.encoder.layers.0.mlp.fc1.weight" has shape \[128, 32\] but the config implies \[64, 32\]/,
    );
    rewrite(dir('hf'), dir('vocab'), { config: (c) => (c.text_config.vocab_size = 49408) });
    await expect(loadClipWeights(dir('vocab'))).rejects.toThrow(/"text_model.embeddings.token_embedding.weight" has shape \[1024, 32\].*\[49408, 32\]/);
  });

  it('refuses a checkpoint deeper than its config', async () => {
    rewrite(dir('hf'), dir('deep'), { config: (c) => (c.text_config.num_hidden_layers = 3) });
    await expect(loadClipWeights(dir('deep'))).rejects.toThrow(/block "text_model.encoder.layers.3" beyond the 3 layers/);
  });

  it('takes a PyTorch .bin when there is no safetensors file, and names what it looked for otherwise', () => {
    const p = dir('pickle');
    fs.mkdirSync(p);
    fs.writeFileSync(path.join(p, 'open_clip_pytorch_model.bin'), 'PK');
    expect(findWeightFile(p)).toBe(path.join(p, 'open_clip_pytorch_model.bin'));
    const none = dir('none');
    fs.mkdirSync(none);
    expect(() => findWeightFile(none)).toThrow(/no weight file found \(looked for model.safetensors, model.safetensors.index.json/);
  });

  it('prefers model.safetensors over other weight files', () => {
    const p = dir('order');
    fs.mkdirSync(p);
    for (const f of ['open_clip_model.safetensors', 'model.safetensors', 'pytorch_model.bin']) fs.writeFileSync(path.join(p, f), '');
    expect(findWeightFile(p)).toBe(path.join(p, 'model.safetensors'));
  });

  it('cannot guess a layout from foreign keys', () => {
    expect(detectLayout(['visual.conv1.weight', 'token_embedding.weight'], 'f')).toBe('open_clip');
    expect(detectLayout(['text_model.x', 'vision_model.y'], 'f')).toBe('hf');
    expect(() => detectLayout(['encoder.weight'], 'f.safetensors')).toThrow(/f.safetensors: cannot tell the weight layout.*encoder.weight/);
    expect(() => detectLayout(['visual.a', 'vision_model.b'], 'f')).toThrow(/both HF and open_clip keys/);
  });
});
