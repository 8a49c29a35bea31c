// Learned prompt files: the format round-trips exactly, broken or foreign files are refused with
// a message that names the file and what differs, and the folder registry picks files by name.
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateModel } from '../../../src/dev/random-model.ts';
import {
  applyLearnedScoring,
  checkpointMismatches,
  LearnedPromptsError,
  LearnedPromptsRegistry,
  loadLearnedPrompts,
  parseLearnedPrompts,
  serializeLearnedPrompts,
  weightsFingerprint,
  type CheckpointIdentity,
  type LearnedScoring,
} from '../../../src/methods/dense-frequency/learned-prompts.ts';
import { defaultScoringSettings } from '../../../src/methods/dense-frequency/pipeline.ts';
import { seededRandom } from '../../../src/util/rng.ts';

const dir = mkdtempSync(join(tmpdir(), 'learned-prompts-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const checkpoint: CheckpointIdentity = {
  id: 'models/demo-tiny',
  fingerprint: 'a'.repeat(32),
  projectionDim: 8,
  imageSize: 64,
  denseLayers: [2, 3, 4],
  denseStart: 4,
  denseAttention: 'vv',
};

const random = seededRandom(7);
const vector = () => Float32Array.from({ length: 8 }, () => random() * 2 - 1);
const pair = () => ({ normal: vector(), abnormal: vector() });
const text = { full: pair(), high: pair(), low: pair(), image: pair() };
const scoring: LearnedScoring = { temperature: 0.0612345678901, fsam: { beta: -0.25, tau: 0.123 }, gscm: { tau: 0.0876 }, fusion: { full: 0.51, high: 0.2, low: 0.35 } };
const training = { createdAt: '2026-01-01T00:00:00.000Z', epochs: 3, bestEpoch: 2, data: { images: 10, categories: [{ id: 'mtd/magnetic_tile' }] }, losses: { train: { total: 1.5 }, validation: { total: 1.6 } } };

function write(name: string, content: string, folder = dir): string {
  mkdirSync(folder, { recursive: true });
  const file = join(folder, `${name}.json`);
  writeFileSync(file, content);
  return file;
}

describe('learned prompts file format', () => {
  it('round-trips every vector bit for bit and every setting exactly', () => {
    const file = write('roundtrip', serializeLearnedPrompts({ checkpoint, text, scoring, training }));
    const loaded = loadLearnedPrompts(file, checkpoint);
    expect(loaded.name).toBe('roundtrip');
    for (const branch of ['full', 'high', 'low', 'image'] as const) {
      expect(loaded.text[branch]!.normal).toEqual(text[branch].normal);
      expect(loaded.text[branch]!.abnormal).toEqual(text[branch].abnormal);
    }
    expect(loaded.scoring).toEqual(scoring);
    expect(loaded.checkpoint).toEqual(checkpoint);
    expect(loaded.training).toEqual(training);
    const json = JSON.parse(readFileSync(file, 'utf8'));
    expect(json).toMatchObject({ format: 'clip-anomaly-prompts', version: 1 });
  });

  it('applies only the trained settings over the service settings', () => {
    const s = applyLearnedScoring({ ...defaultScoringSettings, sigma: 7, cutoff: 0.3 }, scoring);
    expect(s).toMatchObject({ temperature: scoring.temperature, sigma: 7, cutoff: 0.3, fusion: scoring.fusion });
    expect(s.fsam).toEqual({ ...defaultScoringSettings.fsam, beta: -0.25, tau: 0.123 });
    expect(s.gscm).toEqual({ ...defaultScoringSettings.gscm, tau: 0.0876 });
  });

  it('refuses a file made for another checkpoint, naming the file and what differs', () => {
    const file = write('foreign', serializeLearnedPrompts({ checkpoint, text, scoring, training }));
    const other: CheckpointIdentity = { ...checkpoint, id: 'openai/clip-vit-base-patch16', fingerprint: 'b'.repeat(32), denseLayers: [6, 9, 12] };
    expect(checkpointMismatches(checkpoint, other)).toEqual(['weights', 'dense layers']);
    let error: unknown;
    try {
      loadLearnedPrompts(file, other);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(LearnedPromptsError);
    const message = (error as Error).message;
    expect(message).toContain(file);
    expect(message).toContain('"models/demo-tiny"');
    expect(message).toContain('"openai/clip-vit-base-patch16"');
    expect(message).toMatch(/different weights, dense layers/);
    // The same weights under another path are the same checkpoint.
    expect(loadLearnedPrompts(file, { ...checkpoint, id: '/abs/models/demo-tiny' }).name).toBe('foreign');
    // A different feature size is refused even with the same weights fingerprint.
    expect(() => loadLearnedPrompts(file, { ...checkpoint, projectionDim: 512 })).toThrow(/projection 8.*projection 512.*different projection size/);
  });

  it('refuses malformed files with a message naming the file and the problem', () => {
    const good = JSON.parse(serializeLearnedPrompts({ checkpoint, text, scoring, training }));
    const cases: Array<[string, unknown, RegExp]> = [
      ['not json', '{', /not valid JSON/],
      ['other format', { ...good, format: 'something' }, /not a learned prompts file/],
      ['future version', { ...good, version: 2 }, /format version 2; this service reads version 1/],
      ['short vector', { ...good, branches: { ...good.branches, high: { normal: [1, 2], abnormal: good.branches.high.abnormal } } }, /branches.high vectors must have 8 values/],
      ['negative tau', { ...good, scoring: { ...good.scoring, gscm: { tau: -1 } } }, /scoring.gscm.tau/],
      ['zero fusion', { ...good, scoring: { ...good.scoring, fusion: { full: 0, high: 0, low: 0 } } }, /fusion weights must not all be 0/],
    ];
    for (const [name, content, pattern] of cases) {
      const text = typeof content === 'string' ? content : JSON.stringify(content);
      expect(() => parseLearnedPrompts(text, `bad/${name}.json`), name).toThrow(pattern);
      expect(() => parseLearnedPrompts(text, `bad/${name}.json`), name).toThrow(`bad/${name}.json`);
    }
  });
});

describe('learned prompts registry', () => {
  const folder = join(dir, 'registry');
  const content = serializeLearnedPrompts({ checkpoint, text, scoring, training });

  it('serves every matching file by name and refuses the others with their reasons', () => {
    write('mtd', content, folder);
    write('visa', content, folder);
    write('other-model', serializeLearnedPrompts({ checkpoint: { ...checkpoint, fingerprint: 'c'.repeat(32) }, text, scoring, training }), folder);
    write('broken', '[]', folder);
    const logged: string[] = [];
    const registry = LearnedPromptsRegistry.load(folder, checkpoint, (m) => logged.push(m));
    expect(registry.names()).toEqual(['mtd', 'visa']);
    expect(registry.refused().map((r) => r.name)).toEqual(['broken', 'other-model']);
    expect(logged).toHaveLength(2);
    expect(registry.resolve('visa').name).toBe('visa');
    // Two files and no default.json: a name is needed.
    expect(() => registry.resolve()).toThrow(/needs a name.*available: mtd, visa/);
    expect(() => registry.resolve('nope')).toThrow(/unknown learned prompts "nope"; available: mtd, visa/);
    expect(() => registry.resolve('other-model')).toThrow(/refused at start-up: .*other-model\.json was trained for checkpoint/);
    const summaries = registry.summaries();
    expect(summaries[0]).toEqual({
      name: 'mtd',
      default: false,
      checkpoint: 'models/demo-tiny',
      createdAt: training.createdAt,
      categories: ['mtd/magnetic_tile'],
      images: 10,
      epochs: 3,
      bestEpoch: 2,
      losses: { train: 1.5, validation: 1.6 },
    });
  });

  it('uses default.json, or the only file, for prompts=learned', () => {
    write('default', content, folder);
    expect(LearnedPromptsRegistry.load(folder, checkpoint).resolve().name).toBe('default');
    const single = join(dir, 'single');
    write('only', content, single);
    const registry = LearnedPromptsRegistry.load(single, checkpoint);
    expect(registry.resolve().name).toBe('only');
    expect(registry.summaries()[0].default).toBe(true);
    expect(LearnedPromptsRegistry.load(join(dir, 'missing'), checkpoint).size).toBe(0);
  });
});

describe('weights fingerprint', () => {
  it('is the same for the same weights in another folder and differs for other weights', () => {
    const a = join(dir, 'tiny-a');
    const b = join(dir, 'tiny-b');
    const c = join(dir, 'tiny-c');
    generateModel({ arch: 'tiny', seed: 1, out: a });
    generateModel({ arch: 'tiny', seed: 2, out: c });
    mkdirSync(b);
    copyFileSync(join(a, 'model.safetensors'), join(b, 'model.safetensors'));
    expect(weightsFingerprint(a)).toMatch(/^[0-9a-f]{32}$/);
    expect(weightsFingerprint(b)).toBe(weightsFingerprint(a));
    expect(weightsFingerprint(c)).not.toBe(weightsFingerprint(a));
  });

  it('samples large files throughout, not only their start', () => {
    const bytes = Buffer.alloc(5 << 20);
    for (let i = 0; i < bytes.length; i += 4096) bytes[i] = i & 0xff;
    const big = join(dir, 'big');
    mkdirSync(big);
    writeFileSync(join(big, 'model.safetensors'), bytes);
    const before = weightsFingerprint(big);
    // Inside the 8th of the 16 chunks (128 KiB each, spread from start to end): neither first nor last.
    bytes[Math.floor((7 * (bytes.length - (128 << 10))) / 15) + 10] ^= 1;
    writeFileSync(join(big, 'model.safetensors'), bytes);
    expect(weightsFingerprint(big)).not.toBe(before);
  });
});
