// Settings sweeps for the evaluation tool: `--set key=value[,value…]` flags → a grid of
// configurations, grouped by what needs its own detector.
//
// Syntax (documented in the CLI help):
// - a comma separates the values to try: `--set temperature=0.05,0.07`;
// - repeated --set flags multiply: `--set fsam.k=3,5 --set sigma=0,4` is 4 configurations;
// - a value that is itself a list uses `+` (or a quoted `|`): `--set denseLayers=6+9+12,9+12`,
//   `--set fusion=0.4+0.3+0.3,1+0+0` (full+high+low weights in one axis).
// Scoring keys are the dotted paths of ScoringSettings (temperature, cutoff, fsam.k, fusion.full,
// imageScore.alpha, branches, …), derived from the defaults so new settings need no code here.
// Graph/model keys (model, imageSize, denseLayers, denseStart, denseAttention, quantize) change
// the ONNX graphs: configurations that share them share one detector.
import { DEFAULT_METHOD, MethodRegistry } from '../methods/registry.ts';
import { defaultScoringSettings, resolveScoringSettings, type ScoringSettings } from '../methods/dense-frequency/pipeline.ts';
import { SETTINGS } from '../settings.ts';

export const DETECTOR_KEYS = ['model', 'imageSize', 'denseLayers', 'denseStart', 'denseAttention', 'quantize'] as const;
export type DetectorKey = (typeof DETECTOR_KEYS)[number];
/** Raw setting values as loadSettings takes them (denseLayers as "6,9,12"). */
export type DetectorOverrides = Partial<Record<DetectorKey, string>>;

/** More configurations than this is almost certainly a typo in a --set flag. */
export const MAX_CONFIGURATIONS = 256;

export interface SweepAxis {
  key: string;
  values: string[];
}

export interface Configuration {
  /** c1, c2, … in grid order: short, and safe as a folder name. */
  id: string;
  /** e.g. "fsam.k=5 sigma=0"; "defaults" without --set. */
  label: string;
  /** The --set values of this configuration, by key, as typed (lists with `+`). */
  set: Record<string, string>;
  /** The scoring method (canonical name); the default method without --set method=…. */
  method: string;
  /** Settings of the dense-frequency method's scoring (the other methods have none to sweep). */
  scoring: ScoringSettings;
  detector: DetectorOverrides;
}

export interface DetectorGroup {
  /** Stable text of the detector overrides, e.g. `{"denseLayers":"2,3,4"}`. */
  key: string;
  detector: DetectorOverrides;
  configurations: Configuration[];
}

export class SweepError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SweepError';
  }
}

type Leaf = 'number' | 'boolean';

/** Dotted paths of every number / boolean in ScoringSettings, e.g. "fsam.k" → "number". */
export function scoringKeys(): Map<string, Leaf> {
  const keys = new Map<string, Leaf>();
  const walk = (obj: object, prefix: string) => {
    for (const [k, v] of Object.entries(obj)) {
      const path = prefix + k;
      if (typeof v === 'number' || typeof v === 'boolean') keys.set(path, typeof v as Leaf);
      else if (v && typeof v === 'object') walk(v, `${path}.`);
    }
  };
  walk(defaultScoringSettings, '');
  return keys;
}

const COMPOUND_KEYS = new Set(['fusion']);
/** The scoring method, a configuration's own field (ClipDetector.scoreDecoded takes it apart from the settings). */
const METHOD_KEY = 'method';
const METHODS = new MethodRegistry();
const LIST_SEPARATOR = /[+|]/;

/** Every key --set accepts, for the help text and error messages. */
export function knownSetKeys(): string[] {
  return [...scoringKeys().keys(), ...COMPOUND_KEYS, METHOD_KEY, ...DETECTOR_KEYS];
}

/** `key=v1,v2` → an axis; the key must be known and no value empty. */
export function parseSetFlag(flag: string): SweepAxis {
  const eq = flag.indexOf('=');
  if (eq <= 0) throw new SweepError(`--set ${flag}: expected key=value[,value…]`);
  const key = flag.slice(0, eq).trim();
  const values = flag.slice(eq + 1).split(',').map((v) => v.trim());
  if (!knownSetKeys().includes(key)) throw new SweepError(`--set ${flag}: unknown key "${key}"; known: ${knownSetKeys().join(', ')}`);
  if (values.some((v) => v === '')) throw new SweepError(`--set ${flag}: empty value`);
  if (new Set(values).size !== values.length) throw new SweepError(`--set ${flag}: a value is repeated`);
  return { key, values };
}

export function parseSetFlags(flags: readonly string[]): SweepAxis[] {
  const axes = flags.map(parseSetFlag);
  const seen = new Set<string>();
  for (const a of axes) {
    if (seen.has(a.key)) throw new SweepError(`--set ${a.key} is given twice; list its values in one flag: ${a.key}=a,b`);
    seen.add(a.key);
  }
  if (seen.has('fusion') && [...seen].some((k) => k.startsWith('fusion.'))) {
    throw new SweepError('--set fusion=… and --set fusion.<branch>=… cannot be combined');
  }
  return axes;
}

function parseNumber(key: string, text: string): number {
  const v = Number(text);
  if (text.trim() === '' || !Number.isFinite(v)) throw new SweepError(`--set ${key}=${text}: not a number`);
  return v;
}

function parseBoolean(key: string, text: string): boolean {
  const t = text.toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(t)) return true;
  if (['0', 'false', 'no', 'off'].includes(t)) return false;
  throw new SweepError(`--set ${key}=${text}: expected true or false`);
}

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  let obj = target;
  for (const p of parts.slice(0, -1)) obj = (obj[p] ??= {}) as Record<string, unknown>;
  obj[parts[parts.length - 1]] = value;
}

/** The detector setting for one graph/model key, checked by the service's own schema. */
function detectorValue(key: DetectorKey, text: string): string {
  const raw = key === 'denseLayers' ? text.split(LIST_SEPARATOR).join(',') : text;
  const parsed = SETTINGS[key].schema.safeParse(raw);
  if (!parsed.success) throw new SweepError(`--set ${key}=${text}: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
  return raw;
}

/** One configuration from key → value text; scoring settings are range-checked here, before any run. */
export function buildConfiguration(id: string, set: Record<string, string>): Configuration {
  const leaves = scoringKeys();
  const overrides: Record<string, unknown> = {};
  const detector: DetectorOverrides = {};
  let method = DEFAULT_METHOD;
  for (const [key, text] of Object.entries(set)) {
    if (key === METHOD_KEY) {
      const found = METHODS.find(text);
      if (!found) throw new SweepError(`--set method=${text}: expected one of ${METHODS.names().join(', ')}`);
      method = found.name;
    } else if ((DETECTOR_KEYS as readonly string[]).includes(key)) {
      detector[key as DetectorKey] = detectorValue(key as DetectorKey, text);
    } else if (key === 'fusion') {
      const w = text.split(LIST_SEPARATOR);
      if (w.length !== 3) throw new SweepError(`--set fusion=${text}: expected three weights full+high+low`);
      const [full, high, low] = w.map((v) => parseNumber(key, v));
      overrides.fusion = { full, high, low };
    } else {
      const kind = leaves.get(key);
      if (!kind) throw new SweepError(`--set ${key}: unknown key`);
      setPath(overrides, key, kind === 'number' ? parseNumber(key, text) : parseBoolean(key, text));
    }
  }
  const label = Object.entries(set).map(([k, v]) => `${k}=${v}`).join(' ') || 'defaults';
  let scoring: ScoringSettings;
  try {
    scoring = resolveScoringSettings(overrides);
  } catch (err) {
    throw new SweepError(`${label}: ${(err as Error).message}`);
  }
  return { id, label, set, method, scoring, detector };
}

/** The grid product of the axes (first axis varies slowest); one "defaults" configuration without axes. */
export function expandGrid(axes: readonly SweepAxis[]): Configuration[] {
  const total = axes.reduce((n, a) => n * a.values.length, 1);
  if (total > MAX_CONFIGURATIONS) throw new SweepError(`the --set flags make ${total} configurations; the limit is ${MAX_CONFIGURATIONS}`);
  const combos: Record<string, string>[] = [{}];
  for (const axis of axes) {
    const next: Record<string, string>[] = [];
    for (const c of combos) for (const v of axis.values) next.push({ ...c, [axis.key]: v });
    combos.splice(0, combos.length, ...next);
  }
  return combos.map((set, i) => buildConfiguration(`c${i + 1}`, set));
}

/** Configurations by detector overrides, in first-seen order; grid order kept inside a group. */
export function groupByDetector(configurations: readonly Configuration[]): DetectorGroup[] {
  const groups = new Map<string, DetectorGroup>();
  for (const c of configurations) {
    const detector = Object.fromEntries(DETECTOR_KEYS.filter((k) => c.detector[k] !== undefined).map((k) => [k, c.detector[k]]));
    const key = JSON.stringify(detector);
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { key, detector, configurations: [] }));
    g.configurations.push(c);
  }
  return [...groups.values()];
}

/**
 * Opens one detector per group, runs the group's configurations on it and closes it before the
 * next group opens, so at most one model (and its workers) is loaded at a time.
 */
export async function forEachDetector<D extends { close(): Promise<void> }>(
  groups: readonly DetectorGroup[],
  open: (group: DetectorGroup) => Promise<D>,
  run: (detector: D, group: DetectorGroup) => Promise<void>,
): Promise<void> {
  for (const group of groups) {
    const detector = await open(group);
    try {
      await run(detector, group);
    } finally {
      await detector.close();
    }
  }
}
