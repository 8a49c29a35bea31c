// Built ONNX graphs kept on disk, keyed by the checkpoint's files and the graph options, so
// only the first start with a given checkpoint and options pays for reading weights and
// writing graphs.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync, mkdirSync, rmSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import type { ClipWeights, ImageGraphOptions } from '../types.ts';
import { buildImageGraph, validateImageGraphOptions } from './image-graph.ts';
import { buildTextGraph } from './text-graph.ts';
import { digestFolder, verifyFolder, type IntegrityProblem } from './graph-integrity.ts';
import { FileWriteError } from '../../util/atomic-write.ts';
import { int8Numerics } from './int8-calibration.ts';
import type { PositionResize } from './position-embedding.ts';
import type { Numerics, Precision, WeightFormat } from './quantize.ts';

/** The calibrated numerics with the weight storage asked for (u8 unless told). */
function withWeights(numerics: Numerics, weights: WeightFormat | undefined): Numerics {
  return numerics.int8 ? { ...numerics, int8: { ...numerics.int8, weights: weights ?? 'u8' } } : numerics;
}

/** Bump when the graphs' structure changes, so stale cached graphs are not reused. */
// 2: the text graph takes input_ids of any length up to the context length.
// 3: complete.json records every file's size and sha256 (graph-integrity.ts).
// 4: exact GELU in the Div form (BiasGelu fusion); the image tower's last block for the class
//    token only; int8 variants (options.precision).
export const GRAPH_FORMAT_VERSION = 4;

export interface BuiltGraphs {
  textPath: string;
  imagePath: string;
  key: string;
  /** True when this call built them; false when they came from the cache. */
  built: boolean;
  buildMs: number;
}

/** Identity of a checkpoint folder: names, sizes and times of its weight and config files. */
export function checkpointFingerprint(folder: string): string {
  const files = readdirSync(folder)
    .filter((f) => /\.(safetensors|json|bin)$/.test(f))
    .sort()
    .map((f) => {
      const st = statSync(join(folder, f));
      return `${f}:${st.size}:${Math.round(st.mtimeMs)}`;
    });
  return files.join('|');
}

export function graphKey(folder: string, options: ImageGraphOptions): string {
  const material = JSON.stringify({ v: GRAPH_FORMAT_VERSION, files: checkpointFingerprint(folder), options });
  return createHash('sha256').update(material).digest('hex').slice(0, 24);
}

/** A cached graph folder whose content does not match its record, and which cannot be rebuilt. */
export class GraphIntegrityError extends Error {
  constructor(
    message: string,
    readonly file: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'GraphIntegrityError';
  }
}

/**
 * Whether a complete cached folder can be used: its files are verified against the hashes in
 * its complete.json. null: nothing cached (build). A problem: cached but altered (rebuild).
 */
function checkCached(dir: string): 'ok' | null | IntegrityProblem {
  const record = join(dir, 'complete.json');
  if (!existsSync(record)) return null;
  let files: unknown;
  try {
    files = (JSON.parse(readFileSync(record, 'utf8')) as { files?: unknown }).files;
  } catch {
    return { file: record, reason: 'unrecorded', detail: 'complete.json is not valid JSON' };
  }
  return verifyFolder(dir, files) ?? 'ok';
}

/**
 * The weights for a build; when the build replaces an altered cache folder and the weights
 * cannot be read, the refusal names the altered file (never falls back to the altered graph).
 */
async function weightsFor(problem: IntegrityProblem | null, loadWeights: () => Promise<ClipWeights>, log: (m: string) => void): Promise<ClipWeights> {
  if (problem === null) return loadWeights();
  log(`graph cache file ${problem.file} does not match its record (${problem.detail}): rebuilding it`);
  try {
    return await loadWeights();
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new GraphIntegrityError(
      `graph cache file ${problem.file} does not match its record (${problem.detail}) and the weights to rebuild it could not be read: ${reason}`,
      problem.file,
      { cause: err },
    );
  }
}

export async function ensureGraphs(
  folder: string,
  cacheDir: string,
  options: ImageGraphOptions,
  loadWeights: () => Promise<ClipWeights>,
  log: (message: string) => void = () => {},
): Promise<BuiltGraphs> {
  const key = graphKey(folder, options);
  const dir = join(cacheDir, 'graphs', key);
  const textPath = join(dir, 'text.onnx');
  const imagePath = join(dir, 'image.onnx');
  const cached = checkCached(dir);
  if (cached === 'ok') return { textPath, imagePath, key, built: false, buildMs: 0 };

  const started = performance.now();
  const weights = await weightsFor(cached, loadWeights, log);
  validateImageGraphOptions(weights, options);
  const numerics = options.precision === 'int8' ? withWeights(await int8Numerics(weights), options.int8Weights) : undefined;
  writeCacheFolder(cacheDir, dir, { folder, options }, (tmp) => {
    buildTextGraph(weights, join(tmp, 'text.onnx'), numerics);
    buildImageGraph(weights, options, join(tmp, 'image.onnx'), { numerics });
  });
  return { textPath, imagePath, key, built: true, buildMs: performance.now() - started };
}

/**
 * Fills a graph cache folder: `build` writes into a temporary folder, which gets its
 * complete.json (`record` plus the format version) and is renamed into place, so a crash never
 * leaves half a graph behind. Then what no run can use any more is pruned.
 */
function writeCacheFolder(cacheDir: string, dir: string, record: object, build: (tmp: string) => void): void {
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    build(tmp);
    const files = digestFolder(tmp);
    writeFileSync(join(tmp, 'complete.json'), JSON.stringify({ ...record, version: GRAPH_FORMAT_VERSION, files }, null, 2));
    rmSync(dir, { recursive: true, force: true });
    renameSync(tmp, dir);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    // A full disk or a read-only cache: say so, naming the file (the system's message does not).
    if (err instanceof FileWriteError || !(err as NodeJS.ErrnoException).code) throw err;
    throw new FileWriteError(dir, err);
  }
  pruneStaleGraphs(cacheDir);
}

/** A graph beyond the two towers that a scoring method needs (e.g. WinCLIP's window graph). */
export interface GraphSpec {
  /** Model name in the workers and file name (`<name>.onnx`). */
  name: string;
  /** What the graph is built with: part of its cache key. */
  options: object;
  /** Bumped when the spec's graph changes structure, so its stale cached copies are rebuilt (part of the key when set). */
  revision?: number;
  /** Refuses options the checkpoint cannot serve, before anything is written. */
  validate?(weights: ClipWeights): void;
  /** Whether the graph has an int8 variant (built with the numerics it is handed). */
  quantizable?: boolean;
  /** Writes the graph to `file`. */
  build(weights: ClipWeights, file: string, context: GraphBuildContext): void;
}

/** What the runtime builds every graph with, beside a spec's own options (part of the cache key when set). */
export interface GraphVariant {
  /** 'int8' builds a quantizable spec's int8 variant. */
  precision?: Precision;
  /** int8 weight storage when not the default 'u8'. */
  int8Weights?: WeightFormat;
  /** The checkpoint layout's position-embedding resizing, when the input size is not the native one. */
  positionResize?: PositionResize;
}

export interface GraphBuildContext {
  numerics?: Numerics;
  positionResize?: PositionResize;
}

export interface BuiltGraph {
  path: string;
  key: string;
  built: boolean;
  buildMs: number;
}

/**
 * A method's graph, cached like the towers but in its own keyed folder beside them, so turning
 * a method on or off never rebuilds the text and image graphs.
 */
export async function ensureGraph(
  folder: string,
  cacheDir: string,
  spec: GraphSpec,
  loadWeights: () => Promise<ClipWeights>,
  log: (message: string) => void = () => {},
  variant: GraphVariant = {},
): Promise<BuiltGraph> {
  const int8 = variant.precision === 'int8' && spec.quantizable === true;
  // Only what is set, so the keys of plain fp32 native-size graphs (and of u8 ones) stay as they were.
  const weightFormat = int8 && variant.int8Weights && variant.int8Weights !== 'u8' ? variant.int8Weights : undefined;
  const build = {
    ...(int8 ? { precision: 'int8' } : {}),
    ...(weightFormat ? { int8Weights: weightFormat } : {}),
    ...(variant.positionResize ? { positionResize: variant.positionResize } : {}),
  };
  const keyed = Object.keys(build).length > 0 ? { build } : {};
  const revision = spec.revision ? { revision: spec.revision } : {};
  const material = JSON.stringify({ v: GRAPH_FORMAT_VERSION, graph: spec.name, files: checkpointFingerprint(folder), options: spec.options, ...revision, ...keyed });
  const key = createHash('sha256').update(material).digest('hex').slice(0, 24);
  const dir = join(cacheDir, 'graphs', key);
  const path = join(dir, `${spec.name}.onnx`);
  const cached = checkCached(dir);
  if (cached === 'ok') return { path, key, built: false, buildMs: 0 };

  const started = performance.now();
  const weights = await weightsFor(cached, loadWeights, log);
  spec.validate?.(weights);
  const numerics = int8 ? withWeights(await int8Numerics(weights), weightFormat) : undefined;
  const context: GraphBuildContext = { numerics, positionResize: variant.positionResize };
  writeCacheFolder(cacheDir, dir, { folder, graph: spec.name, options: spec.options, ...keyed }, (tmp) => spec.build(weights, join(tmp, `${spec.name}.onnx`), context));
  return { path, key, built: true, buildMs: performance.now() - started };
}

/**
 * Removes what no run of this version can use, after a build (graphs are hundreds of MB each):
 * cached graphs of an older format version, and temporary build folders of processes that are
 * gone. Graphs of other checkpoints or options are kept: another service may share the cache.
 * Returns the names removed.
 */
export function pruneStaleGraphs(cacheDir: string): string[] {
  const root = join(cacheDir, 'graphs');
  if (!existsSync(root)) return [];
  const removed: string[] = [];
  for (const name of readdirSync(root)) {
    const path = join(root, name);
    const tmp = /\.tmp-(\d+)$/.exec(name);
    let stale = false;
    if (tmp) {
      stale = !processAlive(Number(tmp[1]));
    } else {
      try {
        const { version } = JSON.parse(readFileSync(join(path, 'complete.json'), 'utf8')) as { version?: unknown };
        stale = typeof version === 'number' && version < GRAPH_FORMAT_VERSION;
      } catch {
        // Not a complete graph folder (or not ours): leave it alone.
      }
    }
    if (stale) {
      rmSync(path, { recursive: true, force: true });
      removed.push(name);
    }
  }
  return removed;
}

function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
