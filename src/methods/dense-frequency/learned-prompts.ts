// Learned prompt files (written by `npm run train`, src/training): the file format, loading
// and validation, the check that a file belongs to the loaded model, and the folder registry
// the service serves them from (PROMPTS_DIR).
//
// Format (JSON, version 1):
//   { format: 'clip-anomaly-prompts', version: 1,
//     checkpoint: { id, fingerprint, projectionDim, imageSize, denseLayers, denseStart, denseAttention },
//     branches: { full: {normal, abnormal}, high: …, low: …, image?: … },   // [projectionDim] numbers each
//     scoring: { temperature, fsam: {beta, tau}, gscm: {tau}, fusion: {full, high, low} },
//     training: { createdAt, data, settings, seed, epochs, steps, bestEpoch, losses, … } }
// A file is refused at load when its checkpoint does not match the model's: the vectors live in
// that checkpoint's embedding space and were fitted on features of those layers at that size.
//
// One file (about 400 lines) on purpose: the format, the checkpoint identity it is checked
// against and the registry that loads a folder of such files change together whenever the
// format does; the registry is a quarter of it and the only seam, and splitting it off would
// only move the imports of its callers (detection, training, eval) without separating concerns.
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { z } from 'zod';
import type { BranchText, TextPair } from './branches.ts';
import type { FusionWeights } from './fusion.ts';
import type { ScoringSettings } from './pipeline.ts';

export const PROMPTS_FORMAT = 'clip-anomaly-prompts';
export const PROMPTS_VERSION = 1;
/** `prompts=learned` without a name uses `default.json`, or the only file when there is one. */
export const DEFAULT_PROMPTS_NAME = 'default';
/** Names as they appear in `prompts=learned:<name>` (the file name without `.json`). */
export const PROMPTS_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** What a prompt file was trained on: the checkpoint's weights and the dense features' definition. */
export interface CheckpointIdentity {
  /** Hub repo id or local folder, as the model was named (informative: the fingerprint decides). */
  id: string;
  /** sha256 of the weight files' names, sizes and first and last MiB (weightsFingerprint). */
  fingerprint: string;
  projectionDim: number;
  imageSize: number;
  denseLayers: number[];
  denseStart: number;
  denseAttention: string;
}

/** The runtime fields checkpointIdentity reads (a ClipRuntime has them all). */
export interface RuntimeLike {
  modelId: string;
  folder: string;
  dim: number;
  graphOptions: { imageSize: number; denseLayers: number[]; denseStart: number; denseAttention: string };
}

/** The trained scoring parameters a file carries; every other setting comes from the service. */
export interface LearnedScoring {
  temperature: number;
  fsam: { beta: number; tau: number };
  gscm: { tau: number };
  fusion: FusionWeights;
}

const vector = z.array(z.number().finite()).min(1);
const pair = z.strictObject({ normal: vector, abnormal: vector });
const positive = z.number().finite().positive();

const fileSchema = z.object({
  format: z.literal(PROMPTS_FORMAT),
  version: z.literal(PROMPTS_VERSION),
  checkpoint: z.object({
    id: z.string().min(1),
    fingerprint: z.string().min(1),
    projectionDim: z.number().int().positive(),
    imageSize: z.number().int().positive(),
    denseLayers: z.array(z.number().int().positive()).min(1),
    denseStart: z.number().int().positive(),
    denseAttention: z.string().min(1),
  }),
  branches: z.strictObject({ full: pair, high: pair, low: pair, image: pair.optional() }),
  scoring: z.object({
    temperature: positive,
    fsam: z.object({ beta: z.number().finite(), tau: positive }),
    gscm: z.object({ tau: positive }),
    fusion: z
      .object({ full: z.number().finite().nonnegative(), high: z.number().finite().nonnegative(), low: z.number().finite().nonnegative() })
      .refine((w) => w.full + w.high + w.low > 0, 'fusion weights must not all be 0'),
  }),
  training: z.record(z.string(), z.unknown()),
});

export type LearnedPromptsFile = z.infer<typeof fileSchema>;

export class LearnedPromptsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LearnedPromptsError';
  }
}

/** A validated file, ready for scoring. */
export interface LearnedPrompts {
  name: string;
  file: string;
  checkpoint: CheckpointIdentity;
  text: BranchText;
  scoring: LearnedScoring;
  training: Record<string, unknown>;
}

/** The fingerprint reads 16 chunks of 128 KiB spread over each weight file (whole files up to 2 MiB). */
const FINGERPRINT_CHUNKS = 16;
const FINGERPRINT_CHUNK = 128 << 10;

/**
 * Identity of the weights in a checkpoint folder, the same on every machine for the same files
 * (unlike the graph cache key, which uses modification times): sha256 over each safetensors
 * file's name, size and 16 chunks spread evenly from its header to its end. Cheap on a 1.7 GB
 * file (2 MiB read); weights that differ anywhere but in a few tensors between the samples
 * (e.g. another seed, another training run) differ in it.
 */
export function weightsFingerprint(folder: string): string {
  const names = readdirSync(folder);
  // safetensors when there are any (the fingerprints of such folders stay what they were), else PyTorch's .bin.
  let files = names.filter((f) => f.endsWith('.safetensors')).sort();
  if (files.length === 0) files = names.filter((f) => f.endsWith('.bin')).sort();
  if (files.length === 0) throw new LearnedPromptsError(`${folder}: no weights file to fingerprint`);
  const hash = createHash('sha256');
  const whole = FINGERPRINT_CHUNKS * FINGERPRINT_CHUNK;
  const buffer = Buffer.alloc(whole);
  for (const name of files) {
    const path = join(folder, name);
    const size = statSync(path).size;
    hash.update(`${name}:${size}:`);
    const ranges =
      size <= whole
        ? [[0, size]]
        : Array.from({ length: FINGERPRINT_CHUNKS }, (_, i) => [Math.floor((i * (size - FINGERPRINT_CHUNK)) / (FINGERPRINT_CHUNKS - 1)), FINGERPRINT_CHUNK]);
    const fd = openSync(path, 'r');
    try {
      for (const [start, length] of ranges) hash.update(buffer.subarray(0, readSync(fd, buffer, 0, length, start)));
    } finally {
      closeSync(fd);
    }
  }
  return hash.digest('hex').slice(0, 32);
}

export function checkpointIdentity(runtime: RuntimeLike): CheckpointIdentity {
  const g = runtime.graphOptions;
  return {
    id: runtime.modelId,
    fingerprint: weightsFingerprint(runtime.folder),
    projectionDim: runtime.dim,
    imageSize: g.imageSize,
    denseLayers: [...g.denseLayers],
    denseStart: g.denseStart,
    denseAttention: g.denseAttention,
  };
}

function describeCheckpoint(c: CheckpointIdentity): string {
  return (
    `"${c.id}" (weights ${c.fingerprint.slice(0, 12)}, projection ${c.projectionDim}, input ${c.imageSize} px, ` +
    `dense layers ${c.denseLayers.join(',')} from block ${c.denseStart}, ${c.denseAttention} attention)`
  );
}

/** What differs between the checkpoint a file was trained for and the loaded one (empty: match). */
export function checkpointMismatches(trained: CheckpointIdentity, loaded: CheckpointIdentity): string[] {
  const differs: string[] = [];
  if (trained.fingerprint !== loaded.fingerprint) differs.push('weights');
  if (trained.projectionDim !== loaded.projectionDim) differs.push('projection size');
  if (trained.imageSize !== loaded.imageSize) differs.push('input size');
  if (trained.denseLayers.join(',') !== loaded.denseLayers.join(',')) differs.push('dense layers');
  if (trained.denseStart !== loaded.denseStart) differs.push('dense start');
  if (trained.denseAttention !== loaded.denseAttention) differs.push('dense attention');
  return differs;
}

/** Parses and validates a file's JSON text; `file` names it in errors. Does not check the checkpoint. */
export function parseLearnedPrompts(text: string, file: string): LearnedPromptsFile {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new LearnedPromptsError(`prompts file ${file} is not valid JSON: ${(err as Error).message}`);
  }
  const format = (json as { format?: unknown } | null)?.format;
  if (format !== PROMPTS_FORMAT) throw new LearnedPromptsError(`prompts file ${file} is not a learned prompts file (format is ${JSON.stringify(format)}, expected "${PROMPTS_FORMAT}")`);
  const version = (json as { version?: unknown }).version;
  if (version !== PROMPTS_VERSION) throw new LearnedPromptsError(`prompts file ${file} has format version ${JSON.stringify(version)}; this service reads version ${PROMPTS_VERSION}`);
  const parsed = fileSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new LearnedPromptsError(`prompts file ${file} is invalid at ${issue.path.join('.') || 'top level'}: ${issue.message}`);
  }
  const dim = parsed.data.checkpoint.projectionDim;
  for (const [name, p] of Object.entries(parsed.data.branches)) {
    if (p && (p.normal.length !== dim || p.abnormal.length !== dim)) {
      throw new LearnedPromptsError(`prompts file ${file}: branches.${name} vectors must have ${dim} values (the checkpoint's projection size)`);
    }
  }
  return parsed.data;
}

function toPair(p: { normal: number[]; abnormal: number[] }): TextPair {
  return { normal: Float32Array.from(p.normal), abnormal: Float32Array.from(p.abnormal) };
}

/** A parsed file as scoring inputs, after checking it belongs to the loaded checkpoint. */
export function toLearnedPrompts(data: LearnedPromptsFile, file: string, loaded: CheckpointIdentity): LearnedPrompts {
  const differs = checkpointMismatches(data.checkpoint, loaded);
  if (differs.length) {
    throw new LearnedPromptsError(
      `prompts file ${file} was trained for checkpoint ${describeCheckpoint(data.checkpoint)}, ` +
        `but the loaded model is ${describeCheckpoint(loaded)}: different ${differs.join(', ')}. ` +
        'Train prompts for this model with npm run train -- --model <it> …',
    );
  }
  const b = data.branches;
  return {
    name: basename(file).replace(/\.json$/i, ''),
    file,
    checkpoint: data.checkpoint,
    text: { full: toPair(b.full), high: toPair(b.high), low: toPair(b.low), ...(b.image ? { image: toPair(b.image) } : {}) },
    scoring: data.scoring,
    training: data.training,
  };
}

/** Reads and validates one file (its checkpoint is not checked yet). */
export function readLearnedPromptsFile(file: string): LearnedPromptsFile {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new LearnedPromptsError(`prompts file ${file} cannot be read: ${(err as Error).message}`);
  }
  return parseLearnedPrompts(text, file);
}

/** Reads, validates and checks one file against the loaded checkpoint. */
export function loadLearnedPrompts(file: string, loaded: CheckpointIdentity): LearnedPrompts {
  return toLearnedPrompts(readLearnedPromptsFile(file), file, loaded);
}

/** Float32 values as the shortest decimals that read back to the same float32. */
function float32List(v: Float32Array): number[] {
  return Array.from(v, (x) => {
    for (let digits = 6; digits < 17; digits++) {
      const short = Number(x.toPrecision(digits));
      if (Math.fround(short) === x) return short;
    }
    return x;
  });
}

/** The JSON text of a file; vectors round-trip to the same float32 values. */
export function serializeLearnedPrompts(input: {
  checkpoint: CheckpointIdentity;
  text: BranchText;
  scoring: LearnedScoring;
  training: Record<string, unknown>;
}): string {
  const p = (t: TextPair) => ({ normal: float32List(t.normal), abnormal: float32List(t.abnormal) });
  const t = input.text;
  const s = input.scoring;
  const data: LearnedPromptsFile = {
    format: PROMPTS_FORMAT,
    version: PROMPTS_VERSION,
    checkpoint: input.checkpoint,
    branches: { full: p(t.full), high: p(t.high), low: p(t.low), ...(t.image ? { image: p(t.image) } : {}) },
    scoring: {
      temperature: s.temperature,
      fsam: { beta: s.fsam.beta, tau: s.fsam.tau },
      gscm: { tau: s.gscm.tau },
      fusion: { full: s.fusion.full, high: s.fusion.high, low: s.fusion.low },
    },
    training: input.training,
  };
  // One vector per line keeps the file diffable without spreading 512 numbers over 512 lines.
  // Only arrays laid out one number per line are joined (string values cannot hold a newline).
  const numbers = /\[\n\s+(-?[\d.e+-]+(?:,\n\s+-?[\d.e+-]+)*)\n\s*\]/g;
  return `${JSON.stringify(data, null, 2).replace(numbers, (_m, list: string) => `[${list.replace(/,\n\s+/g, ', ')}]`)}\n`;
}

/** The trained parameters of `scoring` that a file carries, for writing it. */
export function learnedScoringOf(s: ScoringSettings): LearnedScoring {
  return { temperature: s.temperature, fsam: { beta: s.fsam.beta, tau: s.fsam.tau }, gscm: { tau: s.gscm.tau }, fusion: { ...s.fusion } };
}

/** Service settings with a file's trained parameters in place; everything else is kept. */
export function applyLearnedScoring(settings: ScoringSettings, learned: LearnedScoring): ScoringSettings {
  return {
    ...settings,
    temperature: learned.temperature,
    fsam: { ...settings.fsam, beta: learned.fsam.beta, tau: learned.fsam.tau },
    gscm: { ...settings.gscm, tau: learned.gscm.tau },
    fusion: { ...learned.fusion },
  };
}

/** One entry of GET /v1/models' prompt list (null where the file's training record lacks it). */
export interface LearnedPromptsSummary {
  name: string;
  /** What `prompts=learned` without a name uses. */
  default: boolean;
  checkpoint: string;
  createdAt: string | null;
  /** Category ids it was trained on. */
  categories: string[];
  images: number | null;
  epochs: number | null;
  bestEpoch: number | null;
  /** Total losses at the saved parameters. */
  losses: { train: number | null; validation: number | null };
}

export interface RefusedPrompts {
  name: string;
  file: string;
  reason: string;
}

/** The prompt files of one folder that match the loaded checkpoint, by name. */
export class LearnedPromptsRegistry {
  private readonly entries = new Map<string, LearnedPrompts>();
  private readonly refusedFiles: RefusedPrompts[] = [];

  constructor(
    readonly checkpoint?: CheckpointIdentity,
    /** The folder the files came from, when loaded from one. */
    readonly folder?: string,
  ) {}

  /**
   * Every `*.json` in `dir` (a missing folder is empty). Files that do not parse or belong to
   * another checkpoint are refused: kept out, reported through `log` and in `refused()`, and a
   * request for them gets the reason.
   */
  static load(dir: string, checkpoint: CheckpointIdentity, log: (message: string) => void = () => {}): LearnedPromptsRegistry {
    const registry = new LearnedPromptsRegistry(checkpoint, dir);
    if (!existsSync(dir)) return registry;
    const files = readdirSync(dir).filter((f) => f.toLowerCase().endsWith('.json') && !f.startsWith('.')).sort();
    for (const f of files) {
      const file = join(dir, f);
      const name = f.replace(/\.json$/i, '');
      try {
        if (!PROMPTS_NAME.test(name)) throw new LearnedPromptsError(`prompts file ${file}: the name "${name}" must be letters, digits, '.', '_' or '-' (at most 64)`);
        registry.add(loadLearnedPrompts(file, checkpoint));
      } catch (err) {
        if (!(err instanceof LearnedPromptsError)) throw err;
        registry.refusedFiles.push({ name, file, reason: err.message });
        log(`refused ${err.message}`);
      }
    }
    return registry;
  }

  add(prompts: LearnedPrompts): void {
    this.entries.set(prompts.name, prompts);
  }

  get size(): number {
    return this.entries.size;
  }

  names(): string[] {
    return [...this.entries.keys()].sort();
  }

  refused(): RefusedPrompts[] {
    return [...this.refusedFiles];
  }

  /** `default`, or the only file; undefined otherwise. */
  defaultName(): string | undefined {
    if (this.entries.has(DEFAULT_PROMPTS_NAME)) return DEFAULT_PROMPTS_NAME;
    return this.entries.size === 1 ? this.names()[0] : undefined;
  }

  /** The named prompts (the default without a name); a LearnedPromptsError says what exists. */
  resolve(name?: string): LearnedPrompts {
    const available = this.names();
    const listing = available.length ? `available: ${available.join(', ')}` : 'no learned prompts are loaded (PROMPTS_DIR holds no usable file)';
    const wanted = name ?? this.defaultName();
    if (wanted === undefined) {
      throw new LearnedPromptsError(`prompts=learned needs a name when there are several files and none is called "${DEFAULT_PROMPTS_NAME}": use prompts=learned:<name>; ${listing}`);
    }
    const found = this.entries.get(wanted);
    if (found) return found;
    const refused = this.refusedFiles.find((r) => r.name === wanted);
    if (refused) throw new LearnedPromptsError(`learned prompts "${wanted}" were refused at start-up: ${refused.reason}`);
    throw new LearnedPromptsError(`unknown learned prompts "${wanted}"; ${listing}`);
  }

  summaries(): LearnedPromptsSummary[] {
    const fallback = this.defaultName();
    // The training record is free-form JSON: read it defensively.
    const at = (v: unknown, ...path: string[]): unknown => path.reduce<unknown>((o, k) => (o && typeof o === 'object' ? (o as Record<string, unknown>)[k] : undefined), v);
    const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
    return this.names().map((name) => {
      const t = this.entries.get(name)!.training;
      const categories = at(t, 'data', 'categories');
      return {
        name,
        default: name === fallback,
        checkpoint: this.entries.get(name)!.checkpoint.id,
        createdAt: typeof t.createdAt === 'string' ? t.createdAt : null,
        categories: Array.isArray(categories) ? categories.map((c) => String(at(c, 'id') ?? c)) : [],
        images: num(at(t, 'data', 'images')),
        epochs: num(t.epochs),
        bestEpoch: num(t.bestEpoch),
        losses: { train: num(at(t, 'losses', 'train', 'total')), validation: num(at(t, 'losses', 'validation', 'total')) },
      };
    });
  }
}
