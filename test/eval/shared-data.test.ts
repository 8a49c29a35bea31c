// The evaluation tool on real defect images (../shared/data/mpdd/metal_plate: 80 good, 71
// defective with masks, 512×512 PNG) with the tiny generated model. Checks the report's
// structure only: the model has random weights, so its numbers mean nothing. Skips when the
// shared data is not there (it is never copied into the repository).
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { generateModel } from '../../src/dev/random-model.ts';
import { RANDOM_MODEL_WARNING } from '../../src/eval/report.ts';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const DATA = resolve(REPO, '../shared/data');
const CATEGORY = join(DATA, 'mpdd', 'metal_plate');

describe.skipIf(!existsSync(join(CATEGORY, 'test')))('npm run eval on mpdd/metal_plate (tiny model)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'eval-shared-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('scores all 151 images and writes a complete report', async () => {
    const model = join(dir, 'tiny');
    generateModel({ arch: 'tiny', seed: 1, out: model });
    const out = join(dir, 'out');
    const env: NodeJS.ProcessEnv = { ...process.env, MODEL_CACHE_DIR: join(dir, 'cache'), HF_HUB_OFFLINE: '1' };
    const started = performance.now();
    // The nested root is searched; --categories picks the one category.
    const args = ['--import', 'tsx', 'scripts/eval.ts', '--data', DATA, '--categories', 'mpdd/metal_plate', '--model', model, '--out', out];
    const run = await new Promise<{ code: number; stderr: string }>((done) => {
      execFile(process.execPath, args, { cwd: REPO, env, encoding: 'utf8', timeout: 180_000 }, (err, _stdout, stderr) =>
        done({ code: err ? Number(err.code ?? 1) : 0, stderr }),
      );
    });
    const seconds = (performance.now() - started) / 1000;
    expect(run.code, run.stderr).toBe(0);
    console.info(`eval on mpdd/metal_plate with the tiny model: ${seconds.toFixed(1)} s including start-up`);

    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    expect(report.generatedRandomModel).toBe(true);
    expect(report.dataset.categories).toEqual([
      expect.objectContaining({ id: 'mpdd/metal_plate', name: 'metal plate', images: 151, good: 80, defective: 71, masks: 71, hasGroundTruth: true, notes: [] }),
    ]);
    expect(report.configurations).toHaveLength(1);
    const [config] = report.configurations;
    expect(config.label).toBe('defaults');
    const [category] = config.categories;
    expect(category).toMatchObject({ id: 'mpdd/metal_plate', images: 151, good: 80, defective: 71, pixelImages: 151 });
    for (const key of ['imageAuroc', 'imageAp', 'imageF1Max', 'pixelAuroc', 'pixelAp', 'aupro']) {
      expect(category.metrics[key], key).toBeGreaterThanOrEqual(0);
      expect(category.metrics[key], key).toBeLessThanOrEqual(1);
      expect(config.mean[key], key).toBe(category.metrics[key]);
    }
    expect(category.overlays).toHaveLength(9);
    for (const file of [...config.files.plots, ...category.overlays.map((o: { file: string }) => o.file)]) {
      expect((await sharp(join(out, file)).metadata()).format, file).toBe('png');
    }
    expect(config.files.plots).toHaveLength(3);
    expect(config.timings.images).toBe(151);
    expect(readFileSync(join(out, 'report.md'), 'utf8').split('\n')).toContain(RANDOM_MODEL_WARNING);
    expect(readFileSync(join(out, config.files.scores), 'utf8').trim().split('\n')).toHaveLength(152);
  }, 180_000);
});
