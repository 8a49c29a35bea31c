// Folder scoring (npm run score): every image of an unlabelled folder through the service's own
// path (ClipDetector.decode → scoreDecodedBatch → respond, as POST /v1/detect/batch), the
// verdicts in scores.csv / scores.json and the most anomalous images with their overlays in
// report.html. scripts/score.ts is the command line around it.
//
// Batch-only methods (MuSc: an image's score depends on the images scored with it) score the
// folder mutually, in batches of at most `batchLimit` images (the BATCH_MAX setting, as for a
// batch request), split evenly: 100 images at 64 are two batches of 50, never 64 + 36. The
// folder is decoded once first to find the images that do not decode (their rows carry the
// error) so every batch is planned over decodable images; each batch is decoded again when
// its turn comes, so memory holds one batch, not the folder. Other methods stream the folder in
// chunks of a few images per worker through the same batch path (dense-frequency packs them
// into batched session runs), the next chunk decoding while one is scored.
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { ClipDetector } from '../detection/clip-detector.ts';
import type { DetectOptions } from '../detection/types.ts';
import { ServiceError } from '../errors.ts';
import type { DecodedImage } from '../imaging/decode.ts';
import type { MethodOutcome } from '../methods/contract.ts';
import { createProgress, type Progress } from '../util/progress.ts';
import { balancedChunks, listFolderImages, type FolderImage } from './discover.ts';
import { folderReportHtml, type TopImage } from './report-html.ts';
import { scoresCsv, scoresJson, type FolderRow, type FolderSummary } from './files.ts';

/** What folder scoring needs of the detector. */
export type FolderDetector = Pick<ClipDetector, 'decode' | 'scoreDecodedBatch' | 'respond' | 'method' | 'capacity' | 'info'>;

/** Images per worker in one chunk of a streamed (not batch-only) method. */
const STREAM_IMAGES_PER_WORKER = 8;

export interface FolderScoringOptions {
  /** The folder (searched recursively). */
  data: string;
  /** The category name put into the prompts. */
  category: string;
  /** Scoring method (name or alias); the detector's default when absent. */
  method?: string;
  /** The verdict's threshold on the score (isAnomalous = score ≥ threshold) and the regions' level. */
  threshold: number;
  /** Images shown in report.html, most anomalous first. */
  top: number;
  /** Batch-only methods: at most this many images scored mutually at a time. */
  batchLimit: number;
  /** Output folder (created). */
  out: string;
  /** The command line, recorded in scores.json. */
  command?: string;
}

export interface FolderScoringIo {
  /** Default: a bar on stderr. */
  progress?: (total: number) => Progress;
  log?: (message: string) => void;
  now?: () => Date;
}

export interface FolderScoringResult {
  outDir: string;
  rows: FolderRow[];
  summary: FolderSummary;
  files: { csv: string; json: string; html: string };
}

type Loaded = { ok: true; image: FolderImage; decoded: DecodedImage; decodeMs: number } | { ok: false; image: FolderImage; error: string };

/** An image's own fault: it does not decode, is too large, cannot be read. Anything else stops the run. */
function ownError(err: unknown): boolean {
  if (err instanceof ServiceError) return err.statusCode < 500;
  const code = (err as NodeJS.ErrnoException)?.code;
  return code === 'ENOENT' || code === 'EACCES' || code === 'EISDIR' || code === 'EPERM';
}

/** Runs `fn` on every index with at most `limit` at a time. */
async function eachLimit(count: number, limit: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < count) await fn(next++);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, count)) }, lane));
}

export async function scoreFolder(detector: FolderDetector, options: FolderScoringOptions, io: FolderScoringIo = {}): Promise<FolderScoringResult> {
  const startedAt = (io.now ?? (() => new Date()))();
  const t0 = performance.now();
  const images = listFolderImages(options.data);
  const { method } = detector.method(options.method);
  const prompts = { mode: 'templated' } as const;
  // The method's own rules first: a folder it refuses costs no decoding.
  method.validate({ prompts, branches: false, references: 0 });
  const info = detector.info();
  const outDir = resolve(options.out);
  mkdirSync(outDir, { recursive: true });
  const progress = io.progress ? io.progress(images.length) : createProgress({ total: images.length });
  const concurrency = Math.max(2, 2 * detector.capacity);
  const detectOptions: DetectOptions = { category: options.category, prompts, map: 'none', threshold: options.threshold, branches: false, method: method.name };

  const load = async (image: FolderImage): Promise<Loaded> => {
    const started = performance.now();
    try {
      const decoded = await detector.decode(await readFile(image.file));
      return { ok: true, image, decoded, decodeMs: performance.now() - started };
    } catch (err) {
      if (!ownError(err)) throw err;
      return { ok: false, image, error: (err as Error).message };
    }
  };
  const loadAll = async (list: readonly FolderImage[]): Promise<Loaded[]> => {
    const out = new Array<Loaded>(list.length);
    await eachLimit(list.length, concurrency, async (i) => void (out[i] = await load(list[i])));
    return out;
  };

  const rows: FolderRow[] = [];
  const failed = (l: Extract<Loaded, { ok: false }>) => {
    rows.push({ path: l.image.path, score: null, isAnomalous: null, threshold: options.threshold, method: method.name, error: l.error });
    progress.tick();
  };
  // The most anomalous images so far, with what their overlays are drawn from.
  const top: Array<{ row: FolderRow; decoded: DecodedImage; outcome: MethodOutcome }> = [];
  const keep = (row: FolderRow, decoded: DecodedImage, outcome: MethodOutcome) => {
    if (options.top <= 0) return;
    if (top.length >= options.top && !(rank(row, top[top.length - 1].row) < 0)) return;
    top.push({ row, decoded, outcome });
    top.sort((a, b) => rank(a.row, b.row));
    if (top.length > options.top) top.pop();
  };

  /** Scores the decodable images of one chunk together and records their rows. */
  const scoreChunk = async (loaded: Loaded[], batch?: number) => {
    const ok = loaded.filter((l): l is Extract<Loaded, { ok: true }> => l.ok);
    for (const l of loaded) if (!l.ok) failed(l);
    if (!ok.length) return;
    const started = performance.now();
    const results = await detector.scoreDecodedBatch(
      ok.map((l) => ({ image: l.decoded, category: options.category, prompts, threshold: options.threshold, method: method.name })),
      method.name,
    );
    for (const [i, l] of ok.entries()) {
      const { outcome, textMs } = results[i];
      const res = await detector.respond(l.decoded, outcome, detectOptions, { started, decodeMs: l.decodeMs, textMs, method: method.name });
      const row: FolderRow = { path: l.image.path, score: res.score, isAnomalous: res.isAnomalous, threshold: res.threshold, method: method.name, error: null };
      if (batch !== undefined) row.batch = batch;
      rows.push(row);
      keep(row, l.decoded, outcome);
      progress.tick();
    }
  };

  let batches: FolderSummary['batches'];
  try {
    if (method.batchOnly) {
      progress.status('checking which images decode');
      const decodable: FolderImage[] = [];
      await eachLimit(images.length, concurrency, async (i) => {
        const l = await load(images[i]);
        if (l.ok) decodable.push(l.image);
        else failed(l);
      });
      decodable.sort((a, b) => (a.path < b.path ? -1 : 1));
      const chunks = balancedChunks(decodable.length, options.batchLimit);
      batches = { limit: options.batchLimit, sizes: chunks.map((c) => c.to - c.from) };
      for (const [k, c] of chunks.entries()) {
        progress.status(`batch ${k + 1}/${chunks.length} (${c.to - c.from} images, scored mutually)`);
        await scoreChunk(await loadAll(decodable.slice(c.from, c.to)), k + 1);
      }
    } else {
      const chunks = balancedChunks(images.length, STREAM_IMAGES_PER_WORKER * detector.capacity);
      let next = chunks.length ? loadAll(images.slice(chunks[0].from, chunks[0].to)) : undefined;
      for (let k = 0; k < chunks.length; k++) {
        const loaded = await next!;
        // The next chunk decodes while this one is scored.
        next = k + 1 < chunks.length ? loadAll(images.slice(chunks[k + 1].from, chunks[k + 1].to)) : undefined;
        await scoreChunk(loaded);
      }
    }
  } finally {
    progress.done();
  }

  rows.sort(rank);
  const topImages: TopImage[] = [];
  for (const [i, t] of top.entries()) {
    const res = await detector.respond(t.decoded, t.outcome, { ...detectOptions, map: 'overlay' }, { started: performance.now(), decodeMs: 0, textMs: 0, method: method.name });
    const map = res.map;
    if (!map || !('data' in map)) throw new Error('the detector rendered no overlay');
    topImages.push({ rank: i + 1, row: t.row, overlayPng: map.data, width: t.decoded.width, height: t.decoded.height, regions: res.regions.length, summary: res.summary });
  }

  const scored = rows.filter((r) => r.error === null);
  const summary: FolderSummary = {
    tool: 'clip-anomaly-score',
    version: 1,
    createdAt: startedAt.toISOString(),
    ...(options.command ? { command: options.command } : {}),
    data: resolve(options.data),
    category: options.category,
    method: method.name,
    threshold: options.threshold,
    model: { id: info.id, generatedRandomModel: info.generatedRandomModel },
    ...(info.generatedRandomModel ? { warning: 'Generated model with random weights: these scores measure nothing about the parts.' } : {}),
    images: rows.length,
    scored: scored.length,
    anomalous: scored.filter((r) => r.isAnomalous).length,
    failed: rows.length - scored.length,
    ...(batches ? { batches } : {}),
    seconds: Math.round(performance.now() - t0) / 1000,
  };
  const files = { csv: join(outDir, 'scores.csv'), json: join(outDir, 'scores.json'), html: join(outDir, 'report.html') };
  // Each file replaced whole (write, then rename): a reader never sees half a file.
  for (const [file, text] of [
    [files.csv, scoresCsv(rows)],
    [files.json, scoresJson(summary, rows)],
    [files.html, folderReportHtml(summary, topImages)],
  ] as const) {
    writeFileSync(`${file}.tmp`, text);
    renameSync(`${file}.tmp`, file);
  }
  return { outDir, rows, summary, files };
}

/** Most anomalous first (ties by path); images that failed at the end, by path. */
export function rank(a: FolderRow, b: FolderRow): number {
  if ((a.score === null) !== (b.score === null)) return a.score === null ? 1 : -1;
  if (a.score !== null && b.score !== null && a.score !== b.score) return b.score - a.score;
  return a.path < b.path ? -1 : a.path > b.path ? 1 : 0;
}
