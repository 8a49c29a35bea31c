// Service settings: every one from an environment variable, validated with zod at start-up.
// A wrong value stops start-up with a message that names the variable and what it allows.
import { availableParallelism, homedir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';

const bool = z
  .enum(['1', '0', 'true', 'false', 'yes', 'no'])
  .transform((v) => v === '1' || v === 'true' || v === 'yes');
const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const num = (min: number, max: number) => z.coerce.number().min(min).max(max);
const intList = z
  .string()
  .regex(/^\d+(,\d+)*$/, 'a comma-separated list of whole numbers, e.g. 6,9,12')
  .transform((s) => s.split(',').map(Number));

interface SettingSpec {
  env: string;
  schema: z.ZodType;
  default?: string;
  help: string;
}

const cores = availableParallelism();

/** The table README.md documents; `--help` prints it. */
export const SETTINGS = {
  host: { env: 'HOST', schema: z.string().min(1), default: '0.0.0.0', help: 'address to listen on' },
  port: { env: 'PORT', schema: int(0, 65535), default: '3000', help: 'port to listen on' },
  model: {
    env: 'MODEL',
    schema: z.string().min(1),
    default: 'openai/clip-vit-base-patch16',
    help: 'Hugging Face repo id (owner/name[@revision]) or a local checkpoint folder',
  },
  cacheDir: {
    env: 'MODEL_CACHE_DIR',
    schema: z.string().min(1),
    default: join(homedir(), '.cache', 'clip-anomaly'),
    help: 'where downloaded checkpoints and built ONNX graphs are kept',
  },
  offline: { env: 'HF_HUB_OFFLINE', schema: bool, default: '0', help: 'never use the network; the model must be cached or local' },
  hubEndpoint: { env: 'HF_ENDPOINT', schema: z.string().url(), default: 'https://huggingface.co', help: 'Hugging Face Hub address' },
  hubToken: { env: 'HF_TOKEN', schema: z.string().min(1), help: 'token for gated or private repos (optional)' },
  imageSize: { env: 'IMAGE_SIZE', schema: int(16, 1024), help: "model input size in pixels (default: the checkpoint's own)" },
  denseLayers: {
    env: 'DENSE_LAYERS',
    schema: intList,
    help: 'blocks whose dense patch features are scored (default: 6,9,12 of 12 or 6,12,18,24 of 24; a quarter steps otherwise)',
  },
  denseStart: { env: 'DENSE_START', schema: int(1, 64), help: 'first block of the dense path (default: start of the last third)' },
  denseAttention: { env: 'DENSE_ATTENTION', schema: z.enum(['vv', 'qqkk']), default: 'vv', help: 'dense path attention: V-V or q-q + k-k' },
  workers: { env: 'WORKERS', schema: int(1, 64), default: '1', help: 'inference worker threads' },
  intraOpThreads: {
    env: 'INTRA_OP_THREADS',
    schema: int(1, 256),
    help: `ONNX Runtime threads per worker (default: cores / workers, here ${cores})`,
  },
  maxQueue: { env: 'MAX_QUEUE', schema: int(0, 100_000), default: '16', help: 'inference jobs that may wait; beyond it requests get 503' },
  jobTimeoutMs: { env: 'JOB_TIMEOUT_MS', schema: int(0, 3_600_000), default: '120000', help: 'a worker running one job longer is replaced (0 = never)' },
  promptCacheSize: { env: 'PROMPT_CACHE_SIZE', schema: int(1, 100_000), default: '256', help: 'text embeddings kept per (category, prompts)' },
  maxBodyBytes: { env: 'MAX_BODY_BYTES', schema: int(1024, 1 << 30), default: String(25 * 1024 * 1024), help: 'largest request body' },
  maxPixels: { env: 'MAX_PIXELS', schema: int(1, 1 << 30), default: String(50_000_000), help: 'largest image (width × height) decoded' },
  threshold: { env: 'THRESHOLD', schema: num(0, 1), default: '0.5', help: 'default anomaly threshold on the score and the map' },
  logLevel: { env: 'LOG_LEVEL', schema: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']), default: 'info', help: 'log level' },
} satisfies Record<string, SettingSpec>;

type Specs = typeof SETTINGS;
export type Settings = {
  [K in keyof Specs]: Specs[K] extends { default: string } ? z.output<Specs[K]['schema']> : z.output<Specs[K]['schema']> | undefined;
};

export class SettingsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SettingsError';
  }
}

/** Reads and validates every setting; `overrides` (by setting key) win over the environment. */
export function loadSettings(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Record<keyof Specs, unknown>> = {}): Settings {
  const out: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [key, spec] of Object.entries(SETTINGS) as [keyof Specs, SettingSpec][]) {
    const raw = key in overrides ? overrides[key] : (env[spec.env] ?? spec.default);
    if (raw === undefined || raw === '') {
      out[key] = undefined;
      continue;
    }
    const parsed = spec.schema.safeParse(raw);
    if (parsed.success) out[key] = parsed.data;
    else problems.push(`${spec.env}=${JSON.stringify(raw)}: ${describeAllowed(spec, parsed.error)}`);
  }
  if (problems.length) throw new SettingsError(`invalid settings:\n  ${problems.join('\n  ')}\nRun with --help for every setting.`);
  return out as Settings;
}

function describeAllowed(spec: SettingSpec, error: z.ZodError): string {
  const issue = error.issues[0];
  if (issue.code === 'invalid_value' && 'values' in issue) return `allowed values are ${issue.values.join(', ')}`;
  return issue.message;
}

export function settingsHelp(): string {
  const rows = Object.values(SETTINGS as Record<string, SettingSpec>).map(
    (s) => `  ${s.env.padEnd(18)} ${s.help}${s.default !== undefined ? ` (default: ${s.default})` : ''}`,
  );
  return `Settings (environment variables):\n${rows.join('\n')}\n`;
}
