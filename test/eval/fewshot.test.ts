// The few-shot and calibration protocols of the evaluation (--shots, --seed, --calibrate) on the
// tiny generated model with generated data:
// - the draw: references come out of the test set (or from train/good), seeds differ, a seed repeats;
// - k-shot localises better than 0-shot where the references share the test images' texture
//   (striped background the random model cannot explain, defects pasted patches of another texture);
// - calibration reports the threshold, its guarantee and the realised rates, or the
//   too-few-normals message for one category while the others still run;
// - the command line: flag parsing, --help, a run's report.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateModel } from '../../src/dev/random-model.ts';
import { discoverCategories } from '../../src/dataset/mvtec.ts';
import { splitCategory } from '../../src/eval/protocol.ts';
import { planEval, runEval, type EvalRunOptions } from '../../src/eval/run.ts';
import { createProgress } from '../../src/eval/progress.ts';
import { RANDOM_MODEL_WARNING } from '../../src/eval/report.ts';
import { lcg } from '../support/lcg.ts';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const S = 64;

let dir: string;
let data: string;
let model: string;
let cache: string;

type Patch = { x: number; y: number; side: number };

/**
 * Diagonal stripes (period 8, random phase) with noise and, in every image, two bright checkerboard
 * blobs: loud but normal, what a zero-shot model takes for defects. The defects are quiet: flat
 * patches of the stripes' mean colour pasted in, which only references of the texture reveal.
 */
function striped(patches: Patch[], seed: number): Buffer {
  const rand = lcg(seed);
  const phase = Math.floor(rand() * 8);
  const rgb = Buffer.alloc(S * S * 3);
  for (let y = 0; y < S; y++) {
    for (let x = 0; x < S; x++) {
      const on = (x + y + phase) % 8 < 4;
      const n = Math.floor(rand() * 16);
      const o = (y * S + x) * 3;
      rgb[o] = (on ? 180 : 60) + n;
      rgb[o + 1] = (on ? 150 : 50) + n;
      rgb[o + 2] = (on ? 90 : 40) + n;
    }
  }
  for (let b = 0; b < 2; b++) {
    const bx = 8 * Math.floor(rand() * 7);
    const by = 8 * Math.floor(rand() * 7);
    for (let y = by; y < by + 8; y++) {
      for (let x = bx; x < bx + 8; x++) rgb.set(((x >> 1) + (y >> 1)) % 2 === 0 ? [40, 90, 250] : [250, 250, 250], (y * S + x) * 3);
    }
  }
  for (const p of patches) {
    for (let y = p.y; y < p.y + p.side; y++) {
      for (let x = p.x; x < p.x + p.side; x++) {
        const n = Math.floor(rand() * 16);
        rgb.set([120 + n, 100 + n, 65 + n], (y * S + x) * 3);
      }
    }
  }
  return rgb;
}

async function png(file: string, raw: Buffer, channels: 1 | 3): Promise<void> {
  mkdirSync(dirname(file), { recursive: true });
  const img = sharp(raw, { raw: { width: S, height: S, channels } });
  await (channels === 1 ? img.toColourspace('b-w') : img).png().toFile(file);
}

/** <root>/<name>/{test/good, test/paste, ground_truth/paste, train/good?}: striped images, pasted defects with masks. */
async function writeCategory(root: string, name: string, counts: { good: number; defective: number; train: number }, seed: number): Promise<void> {
  const rand = lcg(seed);
  const folder = join(root, name);
  const jobs: Promise<void>[] = [];
  const id = (i: number) => String(i).padStart(3, '0');
  for (let i = 0; i < counts.good; i++) jobs.push(png(join(folder, 'test', 'good', `${id(i)}.png`), striped([], seed * 1000 + i), 3));
  for (let i = 0; i < counts.train; i++) jobs.push(png(join(folder, 'train', 'good', `${id(i)}.png`), striped([], seed * 1000 + 300 + i), 3));
  for (let i = 0; i < counts.defective; i++) {
    const p = { x: 8 * Math.floor(rand() * 6), y: 8 * Math.floor(rand() * 6), side: 16 };
    const mask = Buffer.alloc(S * S);
    for (let y = p.y; y < p.y + p.side; y++) mask.fill(255, y * S + p.x, y * S + p.x + p.side);
    jobs.push(png(join(folder, 'test', 'paste', `${id(i)}.png`), striped([p], seed * 1000 + 600 + i), 3));
    jobs.push(png(join(folder, 'ground_truth', 'paste', `${id(i)}_mask.png`), mask, 1));
  }
  await Promise.all(jobs);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'eval-fewshot-'));
  data = join(dir, 'data');
  model = join(dir, 'tiny');
  cache = join(dir, 'cache');
  generateModel({ arch: 'tiny', seed: 1, out: model });
  // stripes: references from train/good, so 0-shot and k-shot score the very same test set.
  await writeCategory(join(data, 'a'), 'stripes', { good: 6, defective: 10, train: 8 }, 1);
  // tiles: no train/good, references from the test set's good images; 30 good for calibration.
  await writeCategory(join(data, 'b'), 'tiles', { good: 30, defective: 6, train: 0 }, 2);
  // scarce: 6 good images only: too few for the calibration's guarantee.
  await writeCategory(join(data, 'b'), 'scarce', { good: 6, defective: 4, train: 0 }, 3);
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

const quiet = { log: () => {}, progress: (total: number) => createProgress({ total, stream: { isTTY: false, write: () => {} } }) };

async function evaluate(extra: Partial<EvalRunOptions>, out: string) {
  const options: EvalRunOptions = {
    data,
    model,
    out: join(dir, out),
    prompts: 'templated',
    promptChoice: { mode: 'templated' },
    pixelSize: 64,
    overlaysPerKind: 0,
    command: 'test',
    env: { MODEL_CACHE_DIR: cache, HF_HUB_OFFLINE: '1', WORKERS: '1' },
    ...extra,
  };
  const result = await runEval(planEval(options), quiet);
  return { ...result, report: JSON.parse(readFileSync(result.reportFile, 'utf8')) };
}

describe('the draw', () => {
  it('takes the references and calibration normals out of the test set, differs by seed and repeats for a seed', () => {
    const [tiles] = discoverCategories(data, { only: ['tiles'] });
    const a = splitCategory(tiles, { shots: 4, calibrate: 3 }, 1);
    expect(a.source).toBe('test/good');
    expect(a.references).toHaveLength(4);
    expect(a.calibration).toHaveLength(3);
    expect(a.test.images).toHaveLength(tiles.images.length - 7);
    for (const r of [...a.references, ...a.calibration]) {
      expect(r.label).toBe(0);
      expect(a.test.images).not.toContain(r);
    }
    expect(new Set([...a.references, ...a.calibration].map((r) => r.name)).size).toBe(7);
    expect(splitCategory(tiles, { shots: 4, calibrate: 3 }, 1).references.map((r) => r.name)).toEqual(a.references.map((r) => r.name));
    expect(splitCategory(tiles, { shots: 4, calibrate: 3 }, 2).references.map((r) => r.name)).not.toEqual(a.references.map((r) => r.name));
    expect(tiles.images.filter((i) => i.label === 1).every((i) => a.test.images.includes(i))).toBe(true);
  });

  it('draws from train/good when there is one and leaves the test set whole', () => {
    const [stripes] = discoverCategories(data, { only: ['stripes'] });
    const s = splitCategory(stripes, { shots: 3, calibrate: 0 }, 7);
    expect(s.source).toBe('train/good');
    expect(s.references.every((r) => r.name.startsWith('train/good/'))).toBe(true);
    expect(s.test.images).toEqual(stripes.images);
  });

  it('refuses more shots than good images (one good image stays in the test set)', () => {
    const [scarce] = discoverCategories(data, { only: ['scarce'] });
    expect(splitCategory(scarce, { shots: 5, calibrate: 0 }, 1).test.images.filter((i) => i.label === 0)).toHaveLength(1);
    expect(() => splitCategory(scarce, { shots: 6, calibrate: 0 }, 1)).toThrow(/scarce has 6 good image\(s\) in test\/good: --shots 6 needs at least 6 \(\+1 left in the test set\)/);
  });
});

describe('npm run eval --shots', () => {
  it('localises pasted defects better with 4 references of the texture than zero-shot (pixel AUROC)', async () => {
    const zero = await evaluate({ only: ['stripes'] }, 'zero');
    const few = await evaluate({ only: ['stripes'], protocol: { shots: 4, calibrate: 0, seeds: [1, 2], targetFalseAlarmRate: 0.1, confidence: 0.9 } }, 'few');
    const zeroAuroc: number = zero.report.configurations[0].mean.pixelAuroc;
    const fewAuroc: number = few.report.protocol.summaries[0].mean.pixelAuroc.mean;
    // The same test set in both runs (references from train/good), so the numbers compare.
    expect(few.report.configurations[0].categories[0].images).toBe(zero.report.configurations[0].categories[0].images);
    expect(fewAuroc, `few-shot ${fewAuroc} vs zero-shot ${zeroAuroc}`).toBeGreaterThan(zeroAuroc + 0.05);
    // Every seed on its own beats zero-shot too.
    for (const c of few.report.configurations) expect(c.categories[0].metrics.pixelAuroc).toBeGreaterThan(zeroAuroc);
  }, 120_000);

  it('reports the protocol, the draw of every seed and the spread; the same seeds give the same numbers', async () => {
    const protocol = { shots: 2, calibrate: 0, seeds: [5, 6], targetFalseAlarmRate: 0.1, confidence: 0.9 };
    const first = await evaluate({ only: ['tiles'], protocol }, 'seeds-1');
    const again = await evaluate({ only: ['tiles'], protocol }, 'seeds-2');
    const r = first.report;
    expect(r.protocol).toMatchObject({ shots: 2, seeds: [5, 6], calibrate: 0, fewShotWeight: 0.5, sources: { 'b/tiles': 'test/good' } });
    expect(r.configurations.map((c: { id: string }) => c.id)).toEqual(['c1-s5', 'c1-s6']);
    const [s5, s6] = r.configurations.map((c: { categories: Array<{ good: number; protocol: { references: string[]; seed: number } }> }) => c.categories[0]);
    expect(s5.good).toBe(28);
    expect(s5.protocol.references).toHaveLength(2);
    expect(s5.protocol.references).not.toEqual(s6.protocol.references);
    // Drawn images are not scored: not in the per-image scores.
    const csv = readFileSync(join(first.outDir, 'scores-c1-s5.csv'), 'utf8');
    for (const name of s5.protocol.references) expect(csv).not.toContain(name);
    const spread = r.protocol.summaries[0].mean.imageAuroc;
    const values = r.configurations.map((c: { mean: { imageAuroc: number } }) => c.mean.imageAuroc);
    expect(spread.min).toBeCloseTo(Math.min(...values), 6);
    expect(spread.max).toBeCloseTo(Math.max(...values), 6);
    expect(spread.n).toBe(2);
    expect(again.report.configurations.map((c: { categories: unknown[] }) => c.categories.map((x) => (x as { metrics: unknown }).metrics))).toEqual(
      r.configurations.map((c: { categories: unknown[] }) => c.categories.map((x) => (x as { metrics: unknown }).metrics)),
    );
    expect(first.markdown).toContain('## Protocol');
    expect(first.markdown).toContain('- Drawn from test/good: b/tiles');
    expect(first.markdown).toMatch(/\| b\/tiles \| \d+\.\d ± \d+\.\d \(/);
    expect(first.markdown.split('\n')).toContain(RANDOM_MODEL_WARNING);
  }, 120_000);
});

describe('npm run eval --calibrate', () => {
  it('reports the threshold, the guarantee and the realised rates; too few normals: the message, and the other category still runs', async () => {
    const { report, markdown } = await evaluate(
      { only: ['tiles', 'scarce'], protocol: { shots: 0, calibrate: 22, seeds: [1], targetFalseAlarmRate: 0.1, confidence: 0.9 } },
      'calibrate',
    );
    const [scarce, tiles] = report.configurations[0].categories;
    expect(tiles.protocol.calibration).toMatchObject({ ok: true, m: 22, targetFalseAlarmRate: 0.1, confidence: 0.9, falseAlarms: { of: 8 }, misses: { of: 6 } });
    const cal = tiles.protocol.calibration;
    expect(cal.achievedConfidence).toBeGreaterThanOrEqual(0.9);
    expect(cal.falseAlarms.rate).toBe(cal.falseAlarms.count / 8);
    expect(cal.guarantee).toMatch(/^P\(false-alarm rate > 10%\) ≤ \d+(\.\d+)?% \(m = 22 normal scores/);
    // The rates are those of the threshold on the test records.
    const csv = readFileSync(join(dir, 'calibrate', 'scores-c1-s1.csv'), 'utf8').trim().split('\n').slice(1).map((l) => l.split(','));
    const good = csv.filter((f) => f[1] === 'b/tiles' && f[4] === '0').map((f) => Number(f[5]));
    expect(good).toHaveLength(8);
    expect(cal.falseAlarms.count).toBe(good.filter((s) => s >= cal.threshold - 1e-7).length);
    expect(scarce.protocol.calibration).toMatchObject({ ok: false, m: 5 });
    expect(scarce.protocol.calibration.message).toMatch(/calibration needs at least 22 normal images for a false-alarm rate ≤ 10% with 90% confidence \(got 5\)/);
    expect(scarce.metrics.imageAuroc).not.toBeNull();
    expect(markdown).toContain('b/scarce: **not calibrated**: calibration needs at least 22');
    expect(markdown).toMatch(/b\/tiles: m = 22, threshold [\d.]+, confidence 0\.9 .*realised false-alarm rate [\d.]+% \(\d\/8\), miss rate [\d.]+% \(\d\/6\)\. Guarantee: P\(false-alarm/);
  }, 120_000);
});

/** Runs the CLI as `npm run eval` does, in its own process. */
function runCli(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, MODEL_CACHE_DIR: cache, HF_HUB_OFFLINE: '1', WORKERS: '1' };
  delete env.MODEL;
  return new Promise((done, fail) => {
    execFile(process.execPath, ['--import', 'tsx', 'scripts/eval.ts', ...args], { cwd: REPO, env, encoding: 'utf8', timeout: 120_000 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') fail(err);
      else done({ status: err ? (err.code as number) : 0, stdout, stderr });
    });
  });
}

describe('the command line', () => {
  it('documents the flags and refuses bad ones', async () => {
    const help = await runCli(['--help']);
    expect(help.status).toBe(0);
    for (const flag of ['--shots K', '--seed S[,S…]', '--calibrate M', '--target-far A', '--confidence C']) expect(help.stdout).toContain(flag);
    expect(help.stdout).toContain('default 1,2,3 with --shots');

    const cases: Array<[string[], RegExp]> = [
      [['--data', data, '--shots', 'two'], /--shots must be a whole number ≥ 0, got "two"/],
      [['--data', data, '--calibrate', '0'], /--calibrate must be a whole number ≥ 1, got "0"/],
      [['--data', data, '--seed', '1'], /--seed needs --shots K or --calibrate M/],
      [['--data', data, '--shots', '1', '--seed', '1,x'], /--seed must be whole numbers/],
      [['--data', data, '--shots', '1', '--seed', '2,2'], /a seed is repeated/],
      [['--data', data, '--calibrate', '5', '--target-far', '1.5'], /--target-far must be a number in \(0, 1\), got "1.5"/],
      [['--data', data, '--target-far', '0.1'], /--target-far and --confidence need --calibrate M/],
      [['--data', data, '--categories', 'scarce', '--shots', '6'], /scarce has 6 good image\(s\) in test\/good: --shots 6 needs at least 6/],
    ];
    const runs = await Promise.all(cases.map(([args]) => runCli(args)));
    runs.forEach((run, i) => {
      expect(run.status, cases[i][0].join(' ')).toBe(2);
      expect(run.stderr).toMatch(cases[i][1]);
    });
  }, 120_000);

  it('runs --shots with --seed and writes the protocol into the report', async () => {
    const out = join(dir, 'cli');
    const run = await runCli(['--data', data, '--categories', 'tiles', '--model', model, '--out', out, '--shots', '1', '--seed', '3', '--overlays', '1', '--pixel-size', '32']);
    expect(run.status, run.stderr).toBe(0);
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    expect(report.command).toContain('--shots 1 --seed 3');
    expect(report.protocol).toMatchObject({ shots: 1, seeds: [3], calibrate: 0 });
    expect(report.configurations[0].categories[0].protocol).toMatchObject({ seed: 3, source: 'test/good', referencesUsed: 1 });
    expect(report.configurations[0].categories[0].overlays.length).toBeGreaterThan(0);
    expect(run.stdout).toContain('## Protocol');
  }, 120_000);
});
