// INTRA_OP_SPINNING: the setting (off unless asked), and real sessions opened both ways — the
// binding takes ORT's session config entry, and the towers give the same numbers either way.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateModel } from '../../../src/dev/random-model.ts';
import { ClipRuntime } from '../../../src/clip/runtime/runtime.ts';
import { loadSettings } from '../../../src/settings.ts';
import { runtimeOptionsFromSettings } from '../../../src/detection/runtime-options.ts';

let dir: string;
let model: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'spin-'));
  model = join(dir, 'tiny');
  generateModel({ arch: 'tiny', seed: 1, out: model });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('INTRA_OP_SPINNING', () => {
  it('is off by default, on with 1, and reaches the runtime options', () => {
    expect(loadSettings({}).intraOpSpinning).toBe(false);
    expect(loadSettings({ INTRA_OP_SPINNING: '1' }).intraOpSpinning).toBe(true);
    expect(() => loadSettings({ INTRA_OP_SPINNING: 'sometimes' })).toThrow(/INTRA_OP_SPINNING="sometimes"/);
    expect(runtimeOptionsFromSettings(loadSettings({ INTRA_OP_SPINNING: '1' })).intraOpSpinning).toBe(true);
  });

  it('sessions open spinning or not and give the same embeddings', async () => {
    const outputs: Float32Array[] = [];
    for (const intraOpSpinning of [false, true]) {
      const runtime = await ClipRuntime.load({
        model,
        cacheDir: join(dir, 'cache'),
        offline: true,
        imageSize: 64,
        denseLayers: [2, 4],
        denseStart: 3,
        denseAttention: 'vv',
        workers: 1,
        intraOpThreads: 2,
        intraOpSpinning,
        maxQueue: 4,
        jobTimeoutMs: 0,
      });
      try {
        const { imageEmbeds } = await runtime.encodeImages(new Float32Array(3 * 64 * 64).fill(0.3), 1);
        outputs.push(imageEmbeds);
      } finally {
        await runtime.close();
      }
    }
    expect(outputs[0].length).toBeGreaterThan(0);
    expect([...outputs[1]]).toEqual([...outputs[0]]);
  });
});
