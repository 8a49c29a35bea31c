// Service settings: every one from an environment variable (or CONFIG_FILE, a JSON file with
// the same names as keys; the environment wins), validated with zod at start-up. A wrong value
// stops start-up with a message that names the variable and what it allows.
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { DEFAULT_CACHE_DIR, DEFAULT_DATA_DIR, DEFAULT_HUB_ENDPOINT, DEFAULT_MAP_URL_MAX_BYTES, DEFAULT_MAP_URL_TTL_MS, DEFAULT_MAX_REQUEST_PIXELS, DEFAULT_MODEL, DEFAULT_PROMPT_CACHE_SIZE, TEXT_EMBEDDING_FILES } from './defaults.ts';

const bool = z
  .enum(['1', '0', 'true', 'false', 'yes', 'no'])
  .transform((v) => v === '1' || v === 'true' || v === 'yes');
// Plain decimals only (not "", "abc" or "0x10", which a coercion turns into 0, NaN or 16), and a
// message that says what is allowed rather than zod's "expected number, received NaN".
const int = (min: number, max: number) => {
  const allowed = `a whole number from ${min} to ${max}`;
  return z.preprocess((v) => (typeof v === 'string' && /^\s*-?\d+\s*$/.test(v) ? Number(v) : v), z.number({ error: allowed }).int(allowed).min(min, allowed).max(max, allowed));
};
const num = (min: number, max: number) => {
  const allowed = `a number from ${min} to ${max}`;
  return z.preprocess((v) => (typeof v === 'string' && /^\s*-?(\d+\.?\d*|\.\d+)(e-?\d+)?\s*$/i.test(v) ? Number(v) : v), z.number({ error: allowed }).min(min, allowed).max(max, allowed));
};
const intList = z
  .string()
  .regex(/^\d+(,\d+)*$/, 'a comma-separated list of whole numbers, e.g. 6,9,12')
  .transform((s) => s.split(',').map(Number));
// Keys are compared as opaque strings; 16+ characters keeps them out of guessing range.
const keyList = z
  .string()
  .regex(/^[\w.~+/=-]{16,256}(,[\w.~+/=-]{16,256})*$/, 'a comma-separated list of keys, each 16-256 characters of letters, digits and . _ ~ + / = -')
  .transform((s) => s.split(','));
const httpUrl = z.url({ protocol: /^https?$/, error: 'an http:// or https:// URL' });

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
    default: DEFAULT_MODEL,
    help: 'Hugging Face repo id (owner/name[@revision]) or a local checkpoint folder',
  },
  cacheDir: {
    env: 'MODEL_CACHE_DIR',
    schema: z.string().min(1),
    default: DEFAULT_CACHE_DIR,
    help: 'where downloaded checkpoints and built ONNX graphs are kept',
  },
  offline: { env: 'HF_HUB_OFFLINE', schema: bool, default: '0', help: 'never use the network; the model must be cached or local' },
  hubEndpoint: { env: 'HF_ENDPOINT', schema: z.string().url(), default: DEFAULT_HUB_ENDPOINT, help: 'Hugging Face Hub address' },
  hubToken: { env: 'HF_TOKEN', schema: z.string().min(1), help: 'token for gated or private repos (optional)' },
  imageSize: { env: 'IMAGE_SIZE', schema: int(16, 1024), help: "model input size in pixels (default: the checkpoint's own)" },
  denseLayers: {
    env: 'DENSE_LAYERS',
    schema: intList,
    help: 'blocks whose dense patch features are scored (default: 6,9,12 of 12; quarter steps at depths ≥ 16 divisible by 4, e.g. 6,12,18,24 of 24; half, 3/4 and last otherwise)',
  },
  denseStart: { env: 'DENSE_START', schema: int(1, 64), help: 'first block of the dense path (default: start of the last third)' },
  denseAttention: { env: 'DENSE_ATTENTION', schema: z.enum(['vv', 'qqkk']), default: 'vv', help: 'dense path attention: V-V or q-q + k-k' },
  quantize: {
    env: 'QUANTIZE',
    schema: z.enum(['fp32', 'int8']),
    default: 'fp32',
    help: 'int8: image, text and WinCLIP graphs with int8 linear layers (outlier channels calibrated at build time), faster towers; fp32: the exact ones',
  },
  quantizeWeights: {
    env: 'QUANTIZE_WEIGHTS',
    schema: z.enum(['auto', 'u8', 's8', 's7']),
    default: 'auto',
    help: 'with QUANTIZE=int8: auto (s8 where the CPU has VNNI, else u8), u8 (8-bit weights, exact u8×u8 sums everywhere), s8 (8-bit weights for the u8×s8 kernel: exact only with VNNI) or s7 (7-bit weights for the u8×s8 kernel without VNNI: faster, twice the weight rounding)',
  },
  winclip: {
    env: 'WINCLIP',
    schema: bool,
    default: '1',
    help: 'offer method=winclip (anomalib WinCLIP): builds and loads its window graph beside the image graph',
  },
  musc: {
    env: 'MUSC',
    schema: bool,
    default: '1',
    help: 'offer method=musc (MuSc, batches only): builds and loads its token graph beside the image graph',
  },
  workers: { env: 'WORKERS', schema: int(1, 64), default: '1', help: 'inference worker threads' },
  intraOpThreads: {
    env: 'INTRA_OP_THREADS',
    schema: int(1, 256),
    help: `ONNX Runtime threads per worker (default: cores / workers, here ${cores} cores)`,
  },
  intraOpSpinning: {
    env: 'INTRA_OP_SPINNING',
    schema: bool,
    default: '0',
    // Measured on a 2-core machine: spinning made the tower alone 5–12 % faster, but the spinning
    // threads take the cores the event loop needs: without it the tiny model served 1.8× more
    // detections at concurrency 4 (README, Performance).
    help: "ONNX Runtime's intra-op threads spin between operators (1) or sleep (0); 1 suits machines with cores to spare",
  },
  executionProvider: {
    env: 'EXECUTION_PROVIDER',
    schema: z.enum(['cpu', 'cuda']),
    default: 'cpu',
    help: "where the inference sessions run: cpu, or cuda (an NVIDIA GPU; needs onnxruntime-node's CUDA binaries, see README, GPU)",
  },
  maxQueue: { env: 'MAX_QUEUE', schema: int(0, 100_000), default: '16', help: 'inference jobs that may wait; beyond it requests get 503' },
  refusalDelayMs: {
    env: 'REFUSAL_DELAY_MS',
    schema: int(0, 1000),
    default: '2',
    help: 'a detection refused for a full queue is answered after this pause, so clients that retry at once (ignoring Retry-After) cost a fraction of the CPU; 0 = at once',
  },
  jobTimeoutMs: { env: 'JOB_TIMEOUT_MS', schema: int(0, 3_600_000), default: '120000', help: 'a worker running one job longer is replaced (0 = never)' },
  promptCacheSize: { env: 'PROMPT_CACHE_SIZE', schema: int(1, 100_000), default: String(DEFAULT_PROMPT_CACHE_SIZE), help: 'text embeddings kept per (category, prompts)' },
  textEmbeddingStore: {
    env: 'TEXT_EMBEDDING_STORE',
    schema: bool,
    default: '1',
    help: `also keep class text embeddings on disk (MODEL_CACHE_DIR/text-embeddings, at most ${TEXT_EMBEDDING_FILES.toLocaleString('en')} files), so a restart does not recompute them`,
  },
  promptsDir: {
    env: 'PROMPTS_DIR',
    schema: z.string().min(1),
    default: 'models/prompts',
    help: 'folder of learned prompt files (npm run train) served as prompts=learned:<name>; prompts=learned uses default.json or the only file',
  },
  dataDir: {
    env: 'DATA_DIR',
    schema: z.string().min(1),
    default: DEFAULT_DATA_DIR,
    help: 'where the embedded store keeps categories, references, calibration, detections and the webhook outbox (store.sqlite)',
  },
  storeUrl: {
    env: 'STORE_URL',
    schema: z.string().regex(/^postgres(ql)?:\/\//, 'a postgres:// or postgresql:// URL'),
    help: 'a PostgreSQL database shared by several replicas instead of the embedded store in DATA_DIR',
  },
  storeSchema: {
    env: 'STORE_SCHEMA',
    schema: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,62}$/, 'letters, digits and _ (not starting with a digit), at most 63'),
    help: "PostgreSQL schema for the service's tables, created when missing (default: the connection's search_path)",
  },
  storePoolSize: { env: 'STORE_POOL_SIZE', schema: int(1, 1000), default: '10', help: 'PostgreSQL connections per replica' },
  storeStatementTimeoutMs: { env: 'STORE_STATEMENT_TIMEOUT_MS', schema: int(0, 3_600_000), default: '30000', help: 'PostgreSQL statement_timeout per statement (0 = none)' },
  storeConnectTimeoutMs: { env: 'STORE_CONNECT_TIMEOUT_MS', schema: int(100, 600_000), default: '10000', help: 'wait for a PostgreSQL connection before answering 503 store_unavailable' },
  storeSsl: {
    env: 'STORE_SSL',
    schema: z.enum(['on', 'off', 'require']),
    help: "PostgreSQL TLS: on (certificate verified), require (encrypted, not verified), off; default: the URL's sslmode",
  },
  storeRetryMaxMs: {
    env: 'STORE_RETRY_MAX_MS',
    schema: int(100, 600_000),
    default: '30000',
    help: 'longest wait between attempts to reach a store that is down at start-up (from 0.5 s, doubling)',
  },
  referenceLimit: { env: 'REFERENCE_LIMIT', schema: int(1, 1024), default: '64', help: 'normal reference images a category may hold' },
  referenceAugment: {
    env: 'REFERENCE_AUGMENT',
    schema: z.enum(['none', 'flips', 'rotations']),
    default: 'none',
    help: 'views stored per reference for parts that come in any pose: none, flips (4), rotations (8: flips and quarter turns)',
  },
  keepReferenceImages: {
    env: 'KEEP_REFERENCE_IMAGES',
    schema: bool,
    default: '1',
    help: 'store the reference images themselves (so a new model can re-embed them, and WinCLIP can use them)',
  },
  fewShotWeight: { env: 'FEWSHOT_WEIGHT', schema: num(0, 1), default: '0.5', help: 'weight of the few-shot (reference) part in the map and the score of a stored category' },
  calibrationConfidence: {
    env: 'CALIBRATION_CONFIDENCE',
    schema: num(0.5, 0.9999),
    default: '0.9',
    help: 'confidence that a calibrated threshold keeps the false-alarm rate at or below the target',
  },
  detectionRetentionCount: { env: 'DETECTION_RETENTION_COUNT', schema: int(0, 100_000_000), default: '100000', help: 'detection records kept (newest), enforced at start-up and every 10 minutes; 0 removes them all at each check' },
  detectionRetentionDays: { env: 'DETECTION_RETENTION_DAYS', schema: int(1, 36_500), default: '30', help: 'detection records older than this are deleted (at start-up and every 10 minutes)' },
  keepDetectionImages: {
    env: 'KEEP_DETECTION_IMAGES',
    schema: bool,
    default: '0',
    help: 'keep the image of each detection record (needed to add a false alarm to the references)',
  },
  maxBodyBytes: { env: 'MAX_BODY_BYTES', schema: int(1024, 1 << 30), default: String(25 * 1024 * 1024), help: 'largest request body' },
  maxPixels: { env: 'MAX_PIXELS', schema: int(1, 1 << 30), default: String(50_000_000), help: 'largest image (width × height) decoded' },
  batchMax: { env: 'BATCH_MAX', schema: int(1, 1024), default: '64', help: 'images per POST /v1/detect/batch request' },
  maxBatchPixels: {
    env: 'MAX_BATCH_PIXELS',
    schema: int(1, 2 ** 31),
    default: String(200_000_000),
    help: 'total pixels (width × height, from the headers) of the images of one batch request',
  },
  maxRequestPixels: {
    env: 'MAX_REQUEST_PIXELS',
    schema: int(1, 2 ** 31),
    default: String(DEFAULT_MAX_REQUEST_PIXELS),
    help: 'largest total of pixels one request decodes: the image and its reference images together (read from their headers first)',
  },
  maxSide: { env: 'MAX_SIDE', schema: int(1, 1 << 20), default: '16384', help: 'longest image width or height decoded' },
  iccConvert: {
    env: 'ICC_CONVERT',
    schema: bool,
    default: '0',
    help: 'convert RGB images with an embedded ICC profile to sRGB (default: use the stored values, as PIL and so CLIP do)',
  },
  requestTimeoutMs: {
    env: 'REQUEST_TIMEOUT_MS',
    schema: int(0, 3_600_000),
    default: '60000',
    help: 'a detection not answered within this gets 504, queued or running (0 = never)',
  },
  mapUrlTtlMs: {
    env: 'MAP_URL_TTL_MS',
    schema: int(1, 86_400_000),
    default: String(DEFAULT_MAP_URL_TTL_MS),
    help: 'how long a map URL (POST /v1/detect with format=url) serves its PNG; later GET /v1/maps/<token> answers 404 map_expired',
  },
  mapUrlMaxBytes: {
    env: 'MAP_URL_MAX_BYTES',
    schema: int(1024, 2 ** 40),
    default: String(DEFAULT_MAP_URL_MAX_BYTES),
    help: 'memory for the PNGs behind map URLs; past it the oldest are dropped (404 map_expired)',
  },
  bodyIdleTimeoutMs: {
    env: 'BODY_IDLE_TIMEOUT_MS',
    schema: int(0, 3_600_000),
    default: '10000',
    help: 'a request body that makes no progress this long gets 408 and its connection is closed (0 = never)',
  },
  maxBodyBytesInFlight: {
    env: 'MAX_BODY_BYTES_IN_FLIGHT',
    schema: int(0, 2 ** 40),
    default: String(32 * 1024 * 1024),
    help: 'request-body bytes held in memory across all requests (declared lengths reserved at the headers); a body that would pass it gets 503 overloaded at once (bodies ≤ 64 KiB and a body alone always pass; 0 = no bound)',
  },
  headersTimeoutMs: {
    env: 'HEADERS_TIMEOUT_MS',
    schema: int(1000, 3_600_000),
    default: '10000',
    help: "a request whose headers have not all arrived within this gets 408 and its connection is closed (Node's own default is 60 s)",
  },
  bodyTimeoutMs: {
    env: 'BODY_TIMEOUT_MS',
    schema: int(0, 3_600_000),
    default: '120000',
    help: 'a request body not received in full within this gets 408 and its connection is closed (0 = never)',
  },
  threshold: { env: 'THRESHOLD', schema: num(0, 1), default: '0.5', help: 'default anomaly threshold on the score and the map' },
  logLevel: { env: 'LOG_LEVEL', schema: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']), default: 'info', help: 'log level' },
  shutdownTimeoutMs: {
    env: 'SHUTDOWN_TIMEOUT_MS',
    schema: int(0, 3_600_000),
    default: '30000',
    help: 'on SIGTERM/SIGINT, how long in-flight requests may take before the process exits anyway (0 = wait for them)',
  },
  apiKeys: { env: 'API_KEYS', schema: keyList, help: 'comma-separated API keys; set (or API_KEYS_FILE) to require one on /v1/* and /metrics' },
  apiKeysFile: { env: 'API_KEYS_FILE', schema: z.string().min(1), help: 'file with one API key per line (# comments); adds to API_KEYS' },
  rateLimitMax: { env: 'RATE_LIMIT_MAX', schema: int(0, 1_000_000_000), default: '0', help: 'requests per key (per client address without keys) per window; 0 = no limit' },
  rateLimitWindowMs: { env: 'RATE_LIMIT_WINDOW_MS', schema: int(1000, 86_400_000), default: '60000', help: 'rate limit window' },
  corsOrigins: {
    env: 'CORS_ORIGINS',
    schema: z
      .string()
      .regex(/^(\*|https?:\/\/[^,\s]+(,https?:\/\/[^,\s]+)*)$/, '* or a comma-separated list of origins such as https://app.example.com')
      .transform((s): '*' | string[] => (s === '*' ? '*' : s.split(','))),
    help: 'browser origins allowed to call the API (CORS): * or a comma-separated list; unset = no CORS headers',
  },
  webhookUrl: { env: 'WEBHOOK_URL', schema: httpUrl, help: 'POST an event here for every anomalous detection (needs WEBHOOK_SECRET)' },
  webhookSecret: { env: 'WEBHOOK_SECRET', schema: z.string().min(16, 'at least 16 characters'), help: 'HMAC-SHA256 key for the X-Signature-256 header' },
  webhookIncludeOverlay: { env: 'WEBHOOK_INCLUDE_OVERLAY', schema: bool, default: '0', help: 'attach the overlay PNG (base64) when the request produced an image map' },
  webhookMaxAttempts: { env: 'WEBHOOK_MAX_ATTEMPTS', schema: int(1, 50), default: '5', help: 'delivery attempts per event before it is given up' },
  webhookBackoffMs: { env: 'WEBHOOK_BACKOFF_MS', schema: int(1, 3_600_000), default: '1000', help: 'first retry delay; doubled per attempt, with jitter' },
  webhookTimeoutMs: { env: 'WEBHOOK_TIMEOUT_MS', schema: int(100, 600_000), default: '10000', help: 'time the receiver has to answer one attempt' },
  webhookLeaseMs: {
    env: 'WEBHOOK_LEASE_MS',
    schema: int(1000, 3_600_000),
    help: "how long a replica's claim on an event holds; past it another replica sends it (default: WEBHOOK_TIMEOUT_MS + 10 s)",
  },
  webhookOutboxMaxBytes: {
    env: 'WEBHOOK_OUTBOX_MAX_BYTES',
    schema: int(1024, Number.MAX_SAFE_INTEGER),
    default: String(256 * 1024 * 1024),
    help: 'bytes of undelivered webhook events kept in the store; beyond it the OLDEST are dropped (and counted)',
  },
  mqttUrl: {
    env: 'MQTT_URL',
    schema: z.string().regex(/^mqtts?:\/\/[^\s/]+(:\d+)?\/?$/, 'an mqtt:// or mqtts:// URL such as mqtt://user:password@broker:1883'),
    help: 'also publish every anomalous detection event to this MQTT broker (QoS 1, from the same durable outbox); credentials may be in the URL',
  },
  mqttTopic: {
    env: 'MQTT_TOPIC',
    // + and # are subscription wildcards, never part of a topic name; NUL is not allowed at all.
    schema: z.string().regex(/^[^+#\u0000]+$/, 'a topic name without + and # (wildcards); {category} and {method} are filled in'),
    default: 'anomaly/{category}',
    help: 'topic template: {category} and {method} are replaced, with % / + # and NUL percent-encoded (e.g. anomaly/metal%2Fplate)',
  },
  mqttUsername: { env: 'MQTT_USERNAME', schema: z.string().min(1), help: 'MQTT user name (instead of the one in MQTT_URL)' },
  mqttPassword: { env: 'MQTT_PASSWORD', schema: z.string().min(1), help: 'MQTT password (instead of the one in MQTT_URL)' },
  mqttMaxAttempts: { env: 'MQTT_MAX_ATTEMPTS', schema: int(1, 100), default: '20', help: 'publish attempts per event before it is given up (20 with the backoff: about an hour of broker outage)' },
  mqttBackoffMs: { env: 'MQTT_BACKOFF_MS', schema: int(1, 3_600_000), default: '1000', help: 'first MQTT retry delay; doubled per attempt (at most 5 min), with jitter' },
  mqttTimeoutMs: { env: 'MQTT_TIMEOUT_MS', schema: int(100, 600_000), default: '10000', help: 'time the broker has to acknowledge (PUBACK) one publish' },
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

/** Reads and validates every setting; `overrides` (by setting key) win over the environment,
 * which wins over CONFIG_FILE, which wins over the defaults. */
export function loadSettings(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Record<keyof Specs, unknown>> = {}): Settings {
  const file = env.CONFIG_FILE ? readConfigFile(env.CONFIG_FILE) : {};
  const out: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [key, spec] of Object.entries(SETTINGS) as [keyof Specs, SettingSpec][]) {
    const raw = key in overrides ? overrides[key] : (env[spec.env] ?? file[spec.env] ?? spec.default);
    if (raw === undefined || raw === '') {
      out[key] = undefined;
      continue;
    }
    const parsed = spec.schema.safeParse(raw);
    if (parsed.success) out[key] = parsed.data;
    else problems.push(`${spec.env}=${JSON.stringify(raw)}: ${describeAllowed(spec, parsed.error)}`);
  }
  // Signing is what lets a receiver trust an event, so there are no unsigned webhooks.
  if (out.webhookUrl && !out.webhookSecret) problems.push('WEBHOOK_SECRET: required when WEBHOOK_URL is set');
  // A lease shorter than an attempt would let a second replica send an event still being sent.
  const lease = out.webhookLeaseMs as number | undefined;
  if (lease !== undefined && lease <= (out.webhookTimeoutMs as number)) problems.push(`WEBHOOK_LEASE_MS=${lease}: must be longer than WEBHOOK_TIMEOUT_MS (${String(out.webhookTimeoutMs)})`);
  if (problems.length) throw new SettingsError(`invalid settings:\n  ${problems.join('\n  ')}\nnpm start -- --help lists every setting with what it allows.`);
  return out as Settings;
}

/** CONFIG_FILE: a JSON object keyed by the variable names; values as strings, numbers, booleans or lists. */
function readConfigFile(path: string): Record<string, string> {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new SettingsError(`CONFIG_FILE=${JSON.stringify(path)}: cannot be read as JSON (${(err as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new SettingsError(`CONFIG_FILE=${JSON.stringify(path)}: must hold a JSON object such as {"PORT": 8080}`);
  }
  const known = new Set(Object.values(SETTINGS as Record<string, SettingSpec>).map((s) => s.env));
  const out: Record<string, string> = {};
  const problems: string[] = [];
  for (const [name, value] of Object.entries(json)) {
    if (!known.has(name)) problems.push(`${name}: not a setting (allowed: ${[...known].join(', ')})`);
    else if (Array.isArray(value)) out[name] = value.join(',');
    else if (['string', 'number', 'boolean'].includes(typeof value)) out[name] = String(value);
    else problems.push(`${name}: must be a string, number, boolean or list`);
  }
  if (problems.length) throw new SettingsError(`invalid settings in CONFIG_FILE=${JSON.stringify(path)}:\n  ${problems.join('\n  ')}`);
  return out;
}

function describeAllowed(spec: SettingSpec, error: z.ZodError): string {
  const issue = error.issues[0];
  if (issue.code === 'invalid_value' && 'values' in issue) return `allowed values are ${issue.values.join(', ')}`;
  return issue.message;
}

export function settingsHelp(): string {
  const rows = Object.values(SETTINGS as Record<string, SettingSpec>).map(
    (s) => `  ${s.env.padEnd(24)} ${s.help}${s.default !== undefined ? ` (default: ${s.default})` : ''}`,
  );
  const file = `  ${'CONFIG_FILE'.padEnd(24)} optional JSON file with any of the variables below as keys; the environment wins`;
  return `Settings (environment variables):\n${file}\n${rows.join('\n')}\n`;
}
