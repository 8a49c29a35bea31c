// Folder scoring (npm run score) on a folder of generated images with the tiny generated model:
// every image gets a row (a corrupt one its error), rows come most anomalous first, each score
// is the one the service gives for that image (the same path), report.html shows the top
// images and references nothing outside itself; method=musc scores the folder in even
// batches, each as POST /v1/detect/batch would score the same images.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateModel } from '../../src/dev/random-model.ts';
import { createClipDetector, type ClipDetector } from '../../src/detection/clip-detector.ts';
import { balancedChunks, listFolderImages } from '../../src/folder-scoring/discover.ts';
import { scoreFolder } from '../../src/folder-scoring/run.ts';
import { loadSettings } from '../../src/settings.ts';
import { texturePng } from '../support/batch-images.ts';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
let dir: string;
let folder: string;
let model: string;
let cache: string;
let detector: ClipDetector;
const quiet = () => ({ status() {}, tick() {}, done() {} });

/** name → bytes: textures in several formats and folders, one with a pasted patch, one corrupt. */
const files = new Map<string, Buffer>();

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'score-folder-'));
  folder = join(dir, 'parts');
  model = join(dir, 'tiny');
  cache = join(dir, 'cache');
  generateModel({ arch: 'tiny', seed: 1, out: model });
  for (let i = 0; i < 9; i++) {
    const png = await texturePng(i + 1);
    const name = i < 3 ? `a/${i}.png` : i < 5 ? `a/b/${i}.jpg` : i < 7 ? `${i}.webp` : `${i}.tif`;
    const bytes = name.endsWith('.png') ? png : await sharp(png)[name.endsWith('.jpg') ? 'jpeg' : name.endsWith('.webp') ? 'webp' : 'tiff']().toBuffer();
    files.set(name, bytes);
  }
  files.set('patch.png', await texturePng(30, true));
  files.set('a/broken.png', Buffer.from('this is not a PNG at all'));
  for (const [name, bytes] of files) {
    mkdirSync(dirname(join(folder, name)), { recursive: true });
    writeFileSync(join(folder, name), bytes);
  }
  writeFileSync(join(folder, 'notes.txt'), 'not an image: skipped');
  mkdirSync(join(folder, '.hidden'));
  writeFileSync(join(folder, '.hidden', 'x.png'), files.get('patch.png')!);
  detector = await createClipDetector(loadSettings({}, { model, cacheDir: cache, offline: '1', winclip: '0', workers: 1 }));
});

afterAll(async () => {
  await detector?.close();
  rmSync(dir, { recursive: true, force: true });
});

function parseCsv(text: string): string[][] {
  // The test data has no quotes except the error message's; split the quoted field by hand.
  return text.trim().split('\n').map((line) => {
    const m = line.match(/^(.*?),"(.*)"$/);
    return m ? [...m[1].split(','), m[2]] : line.split(',');
  });
}

describe('listFolderImages and balancedChunks', () => {
  it('finds image files at any depth, skipping hidden ones and other files, in path order', () => {
    expect(listFolderImages(folder).map((i) => i.path)).toEqual([...files.keys()].sort());
    expect(() => listFolderImages(join(dir, 'missing'))).toThrow(/does not exist/);
  });

  it('walks each folder once: a link back up the tree (parent -> ..) or to itself is no loop', () => {
    const tree = join(dir, 'looped');
    mkdirSync(join(tree, 'a'), { recursive: true });
    writeFileSync(join(tree, 'a', 'x.png'), 'not really a png');
    symlinkSync('..', join(tree, 'a', 'parent'));
    symlinkSync('.', join(tree, 'self'));
    expect(listFolderImages(tree).map((i) => i.path)).toEqual(['a/x.png']);
  });

  it('splits into even chunks of at most the limit', () => {
    expect(balancedChunks(100, 64).map((c) => c.to - c.from)).toEqual([50, 50]);
    expect(balancedChunks(129, 64).map((c) => c.to - c.from)).toEqual([43, 43, 43]);
    expect(balancedChunks(10, 64)).toEqual([{ from: 0, to: 10 }]);
    expect(balancedChunks(0, 8)).toEqual([]);
  });
});

describe('scoreFolder', () => {
  it('writes a row per image, most anomalous first, the corrupt one with its error, and the service\'s own scores', async () => {
    const out = join(dir, 'out-dense');
    const ticks: number[] = [];
    const result = await scoreFolder(detector, { data: folder, category: 'plate', threshold: 0.47, top: 4, batchLimit: 64, out }, { progress: () => ({ status() {}, tick: (n = 1) => void ticks.push(n), done() {} }) });
    expect(ticks.length).toBe(files.size);

    const json = JSON.parse(readFileSync(result.files.json, 'utf8'));
    expect(json).toMatchObject({ tool: 'clip-anomaly-score', category: 'plate', method: 'dense-frequency', threshold: 0.47, images: 11, scored: 10, failed: 1, model: { generatedRandomModel: true } });
    const rows = json.rows as Array<{ path: string; score: number | null; isAnomalous: boolean | null; threshold: number; method: string; error: string | null }>;
    expect(rows.map((r) => r.path).sort()).toEqual([...files.keys()].sort());
    const last = rows[rows.length - 1];
    expect(last).toMatchObject({ path: 'a/broken.png', score: null, isAnomalous: null, method: 'dense-frequency' });
    expect(last.error).toMatch(/could not be read as an image/);
    const scored = rows.slice(0, -1);
    for (let i = 1; i < scored.length; i++) expect(scored[i - 1].score!).toBeGreaterThanOrEqual(scored[i].score!);
    expect(json.anomalous).toBe(scored.filter((r) => r.score! >= 0.47).length);
    for (const r of scored) {
      expect(r.error).toBeNull();
      expect(r.isAnomalous).toBe(r.score! >= 0.47);
      // The same score as POST /v1/detect for that file.
      const res = await detector.detect(files.get(r.path)!, { category: 'plate', prompts: { mode: 'templated' }, map: 'none', threshold: 0.47, branches: false });
      expect(r.score, r.path).toBeCloseTo(res.score, 6);
    }

    const csv = parseCsv(readFileSync(result.files.csv, 'utf8'));
    expect(csv[0]).toEqual(['path', 'score', 'isAnomalous', 'threshold', 'method', 'error']);
    expect(csv.slice(1).map((c) => c[0])).toEqual(rows.map((r) => r.path));
    csv.slice(1, -1).forEach((c, i) => {
      expect(Number(c[1])).toBeCloseTo(scored[i].score!, 6);
      expect(c.slice(2, 6)).toEqual([String(scored[i].isAnomalous), '0.47', 'dense-frequency', '']);
    });
    expect(csv[csv.length - 1].slice(0, 5)).toEqual(['a/broken.png', '', '', '0.47', 'dense-frequency']);
    expect(csv[csv.length - 1][5]).toBe(last.error);

    const html = readFileSync(result.files.html, 'utf8');
    // The four best-scored images, in rank order, each with an embedded overlay PNG.
    const alts = [...html.matchAll(/<img alt="overlay of ([^"]+)"[^>]* src="data:image\/png;base64,([A-Za-z0-9+/=]+)"/g)];
    expect(alts.map((m) => m[1])).toEqual(scored.slice(0, 4).map((r) => r.path));
    for (const m of alts) {
      const meta = await sharp(Buffer.from(m[2], 'base64')).metadata();
      expect(meta.format).toBe('png');
      expect(meta.width).toBe(64);
    }
    expectOffline(html);
  });

  it('method=musc scores the folder in even mutual batches, each as the batch route scores those images', async () => {
    const out = join(dir, 'out-musc');
    const run = await scoreFolder(detector, { data: folder, category: 'plate', method: 'musc', threshold: 0.5, top: 3, batchLimit: 6, out }, { progress: quiet });
    const json = JSON.parse(readFileSync(run.files.json, 'utf8'));
    // 10 decodable images at most 6 per batch: 5 + 5, never 6 + 4.
    expect(json.batches).toEqual({ limit: 6, sizes: [5, 5] });
    expect(json).toMatchObject({ method: 'musc', scored: 10, failed: 1 });
    const rows = json.rows as Array<{ path: string; score: number | null; batch?: number; error: string | null }>;
    expect(rows[rows.length - 1]).toMatchObject({ path: 'a/broken.png', score: null });
    for (const b of [1, 2]) {
      const members = rows.filter((r) => r.batch === b);
      expect(members).toHaveLength(5);
      const uploads = members.map((r) => files.get(r.path)!);
      const batch = await detector.detectBatch(uploads, { category: 'plate', prompts: { mode: 'templated' }, map: 'none', threshold: 0.5, branches: false, method: 'musc' });
      batch.items.forEach((item, i) => {
        if (!item.ok) throw item.error;
        expect(members[i].score, members[i].path).toBeCloseTo(item.result.score, 6);
      });
    }
    // The batches are consecutive in path order; the pasted patch tops its own batch.
    const batchOf = new Map(rows.filter((r) => r.batch).map((r) => [r.path, r.batch!]));
    const order = listFolderImages(folder).map((i) => i.path).filter((p) => batchOf.has(p));
    expect(order.map((p) => batchOf.get(p))).toEqual([1, 1, 1, 1, 1, 2, 2, 2, 2, 2]);
    const own = rows.filter((r) => r.batch === batchOf.get('patch.png'));
    expect(own[0].path).toBe('patch.png');
    const html = readFileSync(run.files.html, 'utf8');
    expect(html).toContain('scored mutually in 2 batch(es) of 5, 5 images');
    expectOffline(html);
  });
});

/** Nothing in the page is fetched from anywhere: no script, no stylesheet link, only data: images. */
function expectOffline(html: string): void {
  expect(html).not.toMatch(/<script|<link|<iframe|<object|@import|url\(/i);
  expect(html).not.toMatch(/https?:\/\//);
  for (const m of html.matchAll(/\b(?:src|href)="([^"]*)"/g)) expect(m[1].startsWith('data:image/png;base64,'), m[1].slice(0, 40)).toBe(true);
}

function runCli(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, MODEL_CACHE_DIR: cache, HF_HUB_OFFLINE: '1', WORKERS: '1', WINCLIP: '0' };
  delete env.MODEL;
  return new Promise((done, fail) => {
    execFile(process.execPath, ['--import', 'tsx', 'scripts/score.ts', ...args], { cwd: REPO, env, encoding: 'utf8', timeout: 120_000 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') fail(err);
      else done({ status: err ? (err.code as number) : 0, stdout, stderr });
    });
  });
}

describe('npm run score', () => {
  it('scores a folder with a progress bar and prints the files it wrote', async () => {
    const out = join(dir, 'out-cli');
    const run = await runCli(['--data', folder, '--category', 'plate', '--model', model, '--out', out, '--top', '2']);
    expect(run.status, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/11\/11 100%/);
    expect(run.stderr).toContain('10 of 11 images scored (1 failed)');
    expect(run.stdout.trim().split('\n')).toEqual(['scores.csv', 'scores.json', 'report.html'].map((f) => join(resolve(out), f)));
    const html = await readFile(join(out, 'report.html'), 'utf8');
    expect(html.match(/<figure/g)).toHaveLength(2);
  });

  it('prints its usage and explains bad arguments', async () => {
    const help = await runCli(['--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('usage: npm run score -- --data <folder> --category <name>');
    const cases: Array<[string[], RegExp]> = [
      [['--category', 'plate'], /--data is required/],
      [['--data', folder], /--category is required/],
      [['--data', folder, '--category', 'plate', '--method', 'patchcore'], /--method patchcore: expected one of dense-frequency, winclip, musc/],
      [['--data', folder, '--category', 'plate', '--threshold', '2'], /--threshold must be a number in \[0, 1\]/],
      [['--data', join(dir, 'missing'), '--category', 'plate', '--model', model], /data folder .*missing does not exist/],
    ];
    const runs = await Promise.all(cases.map(([args]) => runCli(args)));
    runs.forEach((run, i) => {
      expect(run.status, `${cases[i][0].join(' ')}: ${run.stderr}`).toBe(2);
      expect(run.stderr).toMatch(cases[i][1]);
    });
  });
});
