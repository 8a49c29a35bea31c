// Training end to end with the tiny generated model on a synthetic dataset made here (grey noise
// texture, defects = planted squares with exact masks):
// - training lowers the validation loss and raises pixel AUROC on held-out images (another
//   folder, never seen) over templated prompts, measured through the detector's own path;
// - zero training steps give exactly the templated maps;
// - the service loads the prompt folder at start, lists the files in /v1/models, serves
//   prompts=learned[:<name>] over HTTP and refuses a file made for another checkpoint;
// - the command line writes the file and the loss curve and prints the final losses.
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeImage } from '../../src/imaging/decode.ts';
import type { ClipDetector } from '../../src/detection/clip-detector.ts';
import type { PromptChoice } from '../../src/detection/types.ts';
import { discoverCategories, readMaskInto } from '../../src/dataset/mvtec.ts';
import { pixelAuroc } from '../../src/eval/metrics.ts';
import { checkpointIdentity, LearnedPromptsRegistry } from '../../src/methods/dense-frequency/learned-prompts.ts';
import { collectTrainingData } from '../../src/training/dataset.ts';
import { runTraining, type TrainRunResult } from '../../src/training/run.ts';
import { defaultTrainerSettings } from '../../src/training/trainer.ts';
import { multipart, startTinyService, type TinyService } from '../support/tiny-service.ts';
import { SIZE, syntheticImage, writeSyntheticCategory } from './synthetic-data.ts';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

let dir: string;
let svc: TinyService;
let trained: TrainRunResult;
const prompts = () => join(dir, 'prompts');

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'training-synthetic-'));
  await writeSyntheticCategory(join(dir, 'aux'), 'tiles', 24, 24, 1);
  await writeSyntheticCategory(join(dir, 'held-out'), 'tiles', 12, 12, 2);
  svc = await startTinyService({ promptsDir: join(dir, 'no-prompts-yet'), winclip: '0' });
});

afterAll(async () => {
  await svc?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function train(name: string, epochs: number): Promise<TrainRunResult> {
  return runTraining({
    runtime: svc.detector.runtime,
    data: collectTrainingData([join(dir, 'aux')]),
    featureDir: join(dir, 'features'),
    out: join(prompts(), `${name}.json`),
    trainer: { ...defaultTrainerSettings, epochs, lr: 0.01, seed: 1 },
    validationFraction: 0.25,
  });
}

function useFolder(detector: ClipDetector): void {
  detector.learned = LearnedPromptsRegistry.load(prompts(), checkpointIdentity(detector.runtime));
}

/** Pixel AUROC of the service's full-size maps over the held-out images. */
async function heldOutPixelAuroc(detector: ClipDetector, choice: PromptChoice): Promise<number> {
  const [category] = discoverCategories(join(dir, 'held-out'));
  const maps: Float32Array[] = [];
  const masks: Uint8Array[] = [];
  for (const image of category.images) {
    const decoded = await decodeImage(await readFile(image.file));
    const { outcome } = await detector.scoreDecoded({ image: decoded, category: 'tile', prompts: choice, threshold: 0.5, partMaps: false });
    maps.push(outcome.map);
    const mask = new Uint8Array(SIZE * SIZE);
    if (image.mask) await readMaskInto(image.mask, SIZE, mask);
    masks.push(mask);
  }
  return pixelAuroc(maps, masks);
}

describe('training on synthetic planted defects (tiny model)', () => {
  it('lowers the validation loss and raises held-out pixel AUROC over templated prompts', async () => {
    trained = await train('planted', 8);
    const history = trained.outcome.history;
    expect(history[0].epoch).toBe(0);
    expect(trained.counts).toMatchObject({ train: 36, validation: 12, featuresComputed: 48 });
    const start = history[0].validation!.total;
    const best = trained.losses.validation!.total;
    expect(trained.outcome.bestEpoch).toBeGreaterThan(0);
    expect(best).toBeLessThan(0.9 * start);

    useFolder(svc.detector);
    const templated = await heldOutPixelAuroc(svc.detector, { mode: 'templated' });
    const learned = await heldOutPixelAuroc(svc.detector, { mode: 'learned', name: 'planted' });
    expect(learned).toBeGreaterThan(templated + 0.1);
    expect(learned).toBeGreaterThan(0.9);

    const file = JSON.parse(readFileSync(trained.file, 'utf8'));
    expect(file.checkpoint).toMatchObject({ projectionDim: 32, imageSize: 64, denseLayers: [2, 3, 4] });
    expect(file.training).toMatchObject({ seed: 1, epochs: history[history.length - 1].epoch, bestEpoch: trained.outcome.bestEpoch, generatedRandomModel: true });
    expect(file.training.data).toMatchObject({ images: 48, train: { images: 36 }, validation: { images: 12 } });
    expect(file.training.losses.validation.total).toBeCloseTo(best, 5);
    const plot = await sharp(trained.plot).metadata();
    expect(plot.format).toBe('png');
    expect(plot.width).toBeGreaterThan(400);
  });

  it('with zero training steps gives exactly the templated maps and scores', async () => {
    const zero = await train('zero', 0);
    expect(zero.outcome.steps).toBe(0);
    expect(zero.counts.featuresComputed).toBe(0); // the first run cached every image
    useFolder(svc.detector);
    const images = [syntheticImage([], 5), syntheticImage([{ x: 20, y: 30, side: 16 }], 6)];
    for (const rgb of images) {
      const decoded = await decodeImage(await sharp(rgb, { raw: { width: SIZE, height: SIZE, channels: 3 } }).png().toBuffer());
      // The learned prompts start from the templated ensemble of "object".
      const a = await svc.detector.scoreDecoded({ image: decoded, category: 'object', prompts: { mode: 'templated' }, threshold: 0.5, partMaps: true });
      const b = await svc.detector.scoreDecoded({ image: decoded, category: 'object', prompts: { mode: 'learned', name: 'zero' }, threshold: 0.5, partMaps: true });
      expect(b.outcome.grid).toEqual(a.outcome.grid);
      expect(b.outcome.map).toEqual(a.outcome.map);
      expect(b.outcome.score).toBe(a.outcome.score);
      // And not trivially: the trained prompts give other maps.
      const c = await svc.detector.scoreDecoded({ image: decoded, category: 'object', prompts: { mode: 'learned', name: 'planted' }, threshold: 0.5, partMaps: true });
      expect(c.outcome.grid.fused).not.toEqual(a.outcome.grid.fused);
    }
  });

  it('is served from PROMPTS_DIR: listed, used by prompts=learned, a foreign file refused', async () => {
    // A file made for another checkpoint (other weights) beside the two good ones.
    const foreign = JSON.parse(readFileSync(join(prompts(), 'planted.json'), 'utf8'));
    foreign.checkpoint = { ...foreign.checkpoint, id: 'some/other-model', fingerprint: '0'.repeat(32) };
    writeFileSync(join(prompts(), 'foreign.json'), JSON.stringify(foreign));
    const other = await startTinyService({ promptsDir: prompts(), winclip: '0' });
    try {
      const models = (await other.app.inject({ method: 'GET', url: '/v1/models' })).json();
      const info = models.models[0];
      expect(info.promptModes).toContain('learned');
      expect(info.learnedPrompts.available.map((p: { name: string }) => p.name)).toEqual(['planted', 'zero']);
      expect(info.learnedPrompts.available[0]).toMatchObject({ default: false, categories: ['tiles'], images: 48, bestEpoch: trained.outcome.bestEpoch });
      expect(info.learnedPrompts.refused).toHaveLength(1);
      expect(info.learnedPrompts.refused[0].reason).toMatch(/foreign\.json was trained for checkpoint "some\/other-model".*different weights/);

      const png = await sharp(syntheticImage([{ x: 8, y: 8, side: 16 }], 9), { raw: { width: SIZE, height: SIZE, channels: 3 } }).png().toBuffer();
      const detect = (value: string) =>
        other.app.inject({
          method: 'POST',
          url: '/v1/detect',
          ...multipart([
            { name: 'image', value: png, filename: 'part.png', type: 'image/png' },
            { name: 'category', value: 'tile' },
            { name: 'prompts', value },
            { name: 'map', value: 'grid' },
          ]),
        });
      const ok = await detect('learned:planted');
      expect(ok.statusCode).toBe(200);
      const direct = await other.detector.scoreDecoded({ image: await decodeImage(png), category: 'tile', prompts: { mode: 'learned', name: 'planted' }, threshold: 0.5, partMaps: false });
      expect(ok.json().score).toBeCloseTo(direct.outcome.score, 6);

      const ambiguous = await detect('learned');
      expect(ambiguous.statusCode).toBe(400);
      expect(ambiguous.json().message).toMatch(/available: planted, zero/);
      const unknown = await detect('learned:nope');
      expect(unknown.statusCode).toBe(400);
      expect(unknown.json().message).toMatch(/unknown learned prompts "nope"; available: planted, zero/);
      const refused = await detect('learned:foreign');
      expect(refused.statusCode).toBe(400);
      expect(refused.json().message).toMatch(/refused at start-up/);
      expect((await detect('learned:../x')).statusCode).toBe(400);

      // With a default.json, prompts=learned needs no name.
      copyFileSync(join(prompts(), 'planted.json'), join(prompts(), 'default.json'));
      useFolder(other.detector);
      const byDefault = await detect('learned');
      expect(byDefault.statusCode).toBe(200);
      expect(byDefault.json().score).toBeCloseTo(direct.outcome.score, 6);
    } finally {
      await other.close();
      rmSync(join(prompts(), 'foreign.json'));
      rmSync(join(prompts(), 'default.json'), { force: true });
    }
  });
});

describe('npm run train', () => {
  const run = (args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((done) => {
      execFile(process.execPath, ['--import', 'tsx', join(REPO, 'scripts/train.ts'), ...args], { cwd: REPO, env: { ...process.env, HF_HUB_OFFLINE: '1' } }, (err, stdout, stderr) =>
        done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });

  it('trains from the command line, writes the file and the curve, prints the losses', async () => {
    const out = join(dir, 'cli', 'cli.json');
    mkdirSync(join(dir, 'cli'), { recursive: true });
    const r = await run(['--data', join(dir, 'aux'), '--model', join(svc.dir, 'tiny'), '--out', out, '--cache', join(dir, 'features'), '--epochs', '2', '--seed', '3']);
    expect(r.stderr + r.stdout).not.toMatch(/error/i);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/start \(templated\)\s+train \d\.\d{4}/);
    expect(r.stdout).toMatch(/final \(epoch \d\)\s+train \d\.\d{4} \(focal/);
    expect(existsSync(out)).toBe(true);
    expect(existsSync(join(dir, 'cli', 'cli.loss.png'))).toBe(true);
    expect(JSON.parse(readFileSync(out, 'utf8')).training.seed).toBe(3);
  });

  it('explains bad arguments before loading any model', async () => {
    const help = await run(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/--val-fraction/);
    const missing = await run(['--out', join(dir, 'x.json')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--data is required/);
    const bad = await run(['--data', join(dir, 'aux'), '--out', join(dir, 'x.json'), '--lr', '0']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--lr must be a number > 0/);
  });
});
