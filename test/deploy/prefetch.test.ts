// `npm run prefetch` (the init container's step): on an empty cache it resolves the model and
// builds every graph the served methods need, then exits 0; a runtime started afterwards with
// the same settings builds nothing. A wrong setting exits 2, a missing model 1.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateModel } from '../../src/dev/random-model.ts';
import { createClipDetector } from '../../src/detection/clip-detector.ts';
import { loadSettings } from '../../src/settings.ts';

const ROOT = join(import.meta.dirname, '..', '..');
let dir: string;
let model: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'prefetch-'));
  model = join(dir, 'tiny');
  generateModel({ arch: 'tiny', seed: 1, out: model });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function prefetch(env: Record<string, string>) {
  return spawnSync(process.execPath, ['--import', 'tsx', 'scripts/prefetch.ts'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: dir, ...env },
    encoding: 'utf8',
    timeout: 120_000,
  });
}

describe('npm run prefetch', () => {
  it('fills the cache once; the server then finds every graph built', async () => {
    const env = { MODEL: model, MODEL_CACHE_DIR: join(dir, 'cache'), HF_HUB_OFFLINE: '1', PROMPTS_DIR: join(dir, 'prompts') };
    const first = prefetch(env);
    expect(first.status, first.stderr).toBe(0);
    expect(first.stderr).toMatch(/building ONNX graphs/);
    expect(first.stderr).toMatch(/building the winclip graph/);
    expect(first.stderr).toMatch(/prefetch: .* ready in .*cache \(resolve .*, graphs .* built, total/);
    const graphs = readdirSync(join(dir, 'cache', 'graphs'));
    expect(graphs.length).toBeGreaterThanOrEqual(2);

    const second = prefetch(env);
    expect(second.status, second.stderr).toBe(0);
    expect(second.stderr).toMatch(/graphs .* cached/);
    expect(second.stderr).not.toMatch(/building/);

    // What the service does at start with the same settings: nothing left to build.
    const settings = loadSettings({ ...env, LOG_LEVEL: 'silent' });
    const detector = await createClipDetector(settings);
    try {
      expect(detector.runtime.timings.graphsBuilt).toBe(false);
    } finally {
      await detector.close();
    }
    expect(readdirSync(join(dir, 'cache', 'graphs')).sort()).toEqual(graphs.sort());
  }, 180_000);

  it('a wrong setting exits 2 naming it; a model that is not there exits 1 saying so', () => {
    const bad = prefetch({ MODEL: model, WORKERS: 'many' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/WORKERS="many"/);
    const missing = prefetch({ MODEL: join(dir, 'no-such-model'), MODEL_CACHE_DIR: join(dir, 'cache2'), HF_HUB_OFFLINE: '1' });
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/^prefetch failed: /m);
  });
});
