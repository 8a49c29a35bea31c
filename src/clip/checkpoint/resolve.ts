// Where the CLIP checkpoint comes from: a model setting names a local folder or a Hugging Face
// repo (`owner/name[@revision]`); either way the answer is a folder holding the files.
//
// Hub repos are cached at `{cacheDir}/{owner}--{name}/{revision}/{file}` with a `.complete.json`
// manifest written last; a complete folder is used without touching the network (delete the
// folder to fetch a moved revision such as `main` again).
import { DEFAULT_HUB_ENDPOINT } from '../../defaults.ts';
import { resolveHubCheckpoint } from './hub-checkpoint.ts';
import { resolveLocalCheckpoint } from './local-checkpoint.ts';
import { parseModelSetting } from './model-setting.ts';
import type { DownloadProgressEvent } from './download-progress.ts';
import type { ResolvedCheckpoint } from './resolved.ts';

export { CheckpointError, type CheckpointErrorKind } from './checkpoint-error.ts';
export { DEFAULT_MODEL, parseModelSetting, type ModelSetting } from './model-setting.ts';
export { defaultCacheDir, MANIFEST_FILE } from './cache-folder.ts';
export type { DownloadProgressEvent } from './download-progress.ts';
export type { ResolvedCheckpoint } from './resolved.ts';

export interface ResolveCheckpointOptions {
  cacheDir: string;
  /** Never touch the network: use a complete cache or fail (the caller maps HF_HUB_OFFLINE=1). */
  offline: boolean;
  /** Default: env HF_ENDPOINT, else DEFAULT_HUB_ENDPOINT (src/defaults.ts). */
  endpoint?: string;
  /** Default: env HF_TOKEN. */
  token?: string;
  fetch?: typeof fetch;
  /** Replaces the stderr progress bar when given. */
  onProgress?: (event: DownloadProgressEvent) => void;
  /** Default: a line on stderr. */
  log?: (msg: string) => void;
  /** Attempts per request (network errors, 5xx), the first included. Default 3. */
  tries?: number;
  /** Wait before the first retry, doubled on each further one. Default 500 ms. */
  retryDelayMs?: number;
  /** The setting's name in error messages ("set MODEL=/that/folder"). Default "MODEL". */
  settingName?: string;
}

export async function resolveCheckpoint(model: string, opts: ResolveCheckpointOptions): Promise<ResolvedCheckpoint> {
  const settingName = opts.settingName ?? 'MODEL';
  const setting = parseModelSetting(model);
  if (setting.kind === 'local') return resolveLocalCheckpoint(setting.folder, model, settingName);

  const log = opts.log ?? ((msg: string) => process.stderr.write(`${msg}\n`));
  const endpoint = (opts.endpoint || process.env.HF_ENDPOINT || DEFAULT_HUB_ENDPOINT).replace(/\/+$/, '');
  return resolveHubCheckpoint(setting, model.trim() || setting.repo, {
    cacheDir: opts.cacheDir,
    offline: opts.offline,
    endpoint,
    onProgress: opts.onProgress,
    settingName,
    http: {
      fetch: opts.fetch ?? globalThis.fetch,
      token: opts.token ?? (process.env.HF_TOKEN || undefined),
      tries: Math.max(1, opts.tries ?? 3),
      retryDelayMs: opts.retryDelayMs ?? 500,
      log,
    },
  });
}
