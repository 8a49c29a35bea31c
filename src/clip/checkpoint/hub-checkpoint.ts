// Gets a Hub repo's checkpoint into the cache: served from a complete cache folder without any
// network; otherwise the repo's file list, then each wanted file downloaded and verified, then
// the manifest that marks the folder complete. Every failure becomes one CheckpointError.
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { cacheFolder, readCompleteManifest, writeManifest, type CachedFile } from './cache-folder.ts';
import { CheckpointError } from './checkpoint-error.ts';
import {
  CONFIG_FILES,
  ESSENTIAL_FILES,
  firstExisting,
  OPTIONAL_FILES,
  shardsOfIndex,
  READABLE_WEIGHTS,
  UNSUPPORTED_WEIGHTS_FILES,
  WEIGHTS_FILES,
  isWeightsIndex,
} from './checkpoint-files.ts';
import { createDownloadProgress, type DownloadProgressEvent } from './download-progress.ts';
import { withFolderLock } from './folder-lock.ts';
import { DownloadError, downloadFile, sha256OfFile } from './download.ts';
import { HubHttpError, HubNetworkError, type HubHttp } from './hub-http.ts';
import { fileUrl, headRepoFile, listRepoFiles, repoPageUrl, type HubRepoRef, type RemoteFile } from './hub-repo.ts';
import type { ModelSetting } from './model-setting.ts';
import type { ResolvedCheckpoint } from './resolved.ts';

export interface HubCheckpointOptions {
  cacheDir: string;
  offline: boolean;
  endpoint: string;
  http: HubHttp;
  onProgress?: (event: DownloadProgressEvent) => void;
  settingName: string;
}

type HubSetting = Extract<ModelSetting, { kind: 'hub' }>;

/** What every error message needs to say where we looked and what to do. */
interface Context {
  model: string;
  ref: HubRepoRef;
  folder: string;
  settingName: string;
  token: boolean;
  tries: number;
}

export async function resolveHubCheckpoint(
  setting: HubSetting,
  model: string,
  options: HubCheckpointOptions,
): Promise<ResolvedCheckpoint> {
  const folder = cacheFolder(options.cacheDir, setting.owner, setting.name, setting.revision);
  const ref: HubRepoRef = { endpoint: options.endpoint, repo: setting.repo, revision: setting.revision };
  const context: Context = {
    model,
    ref,
    folder,
    settingName: options.settingName,
    token: Boolean(options.http.token),
    tries: options.http.tries,
  };

  const fromCache = async (): Promise<ResolvedCheckpoint | undefined> => {
    const cached = await readCompleteManifest(folder, setting.repo, setting.revision);
    if (!cached.complete) return undefined;
    const { manifest } = cached;
    return {
      folder,
      source: 'hub',
      repo: setting.repo,
      revision: setting.revision,
      commit: manifest.commit,
      config: manifest.config,
      weights: manifest.weights,
      // The first weights file of the selection rule that was downloaded: the index when sharded.
      weightsFile: WEIGHTS_FILES.find((f) => f in manifest.files) ?? manifest.weights[0],
      missing: manifest.missing,
    };
  };
  const cached = await fromCache();
  if (cached) return cached;

  if (options.offline) {
    throw new CheckpointError(
      'offline-not-cached',
      `Model "${model}" ${cacheState(context)} and offline mode is on (HF_HUB_OFFLINE=1), so the Hugging Face ` +
        `Hub was not contacted. Start once with offline mode off and internet access to fill the cache, or ${byHand(context)}`,
      folder,
    );
  }

  try {
    const log = options.http.log;
    return await withFolderLock(
      folder,
      // Whoever held the lock may have completed the folder meanwhile.
      async () => (await fromCache()) ?? (await downloadRepo(context, options)),
      {
        onWait: () => log(`Waiting for another process that is downloading model "${model}" into ${folder} (lock ${folder}.lock)`),
        onCompromised: (err) => log(`Warning: the download lock on ${folder} was lost (${err.message}); continuing`),
      },
    );
  } catch (err) {
    throw describeFailure(err, context);
  }
}

async function downloadRepo(context: Context, options: HubCheckpointOptions): Promise<ResolvedCheckpoint> {
  const { ref, folder } = context;
  const { http } = options;
  http.log(`Downloading model "${context.model}" from ${repoPageUrl(ref)} into ${folder}`);

  const listing = await listRepoFiles(http, ref);
  const remote = new Map<string, Promise<RemoteFile | null>>();
  const remoteFile = (file: string): Promise<RemoteFile | null> => {
    if (!remote.has(file)) remote.set(file, headRepoFile(http, ref, file));
    return remote.get(file)!;
  };
  // With the API's list no request is needed to know a file is absent; without it, HEAD tells.
  const exists = async (file: string) => (listing ? listing.files.has(file) : (await remoteFile(file)) !== null);

  const config = await firstExisting(CONFIG_FILES, exists);
  if (!config) {
    throw new CheckpointError(
      'repo-incomplete',
      `Model "${context.model}" on the Hugging Face Hub has no config: looked for ${CONFIG_FILES.join(', ')} ` +
        `in ${repoPageUrl(ref)}. Is it a CLIP checkpoint?`,
      folder,
    );
  }
  const weightsFile = await firstExisting(WEIGHTS_FILES, exists);
  if (!weightsFile) {
    const unsupported = listing ? UNSUPPORTED_WEIGHTS_FILES.filter((f) => listing.files.has(f)) : [];
    const note = unsupported.length ? ` It has ${unsupported.join(', ')}, but only ${READABLE_WEIGHTS} can be read.` : '';
    throw new CheckpointError(
      'repo-incomplete',
      `Model "${context.model}" on the Hugging Face Hub has no weights: looked for ${WEIGHTS_FILES.join(', ')} ` +
        `in ${repoPageUrl(ref)}.${note}`,
      folder,
    );
  }
  const optional: string[] = [];
  const missing: string[] = [];
  for (const file of OPTIONAL_FILES) ((await exists(file)) ? optional : missing).push(file);

  const progress = createDownloadProgress({ onProgress: options.onProgress, log: http.log });
  const files: Record<string, CachedFile> = {};
  let commit = listing?.commit;

  const fetchFile = async (file: string): Promise<void> => {
    try {
      const info = await remoteFile(file);
      if (!info) throw new HubHttpError(404, fileUrl(ref, file), 'EntryNotFound');
      commit ??= info.commit;
      const dest = path.join(folder, file);
      const kept = await verifiedExisting(dest, info);
      const result =
        kept ??
        (await downloadFile({
          url: fileUrl(ref, file),
          dest,
          expectedSize: info.size,
          expectedSha256: info.sha256,
          http,
          onStart: (resumedFrom, total) => progress.start(file, resumedFrom, total),
          onBytes: (received, total) => progress.update(file, received, total),
        }));
      if (!kept) progress.end(file, result.size);
      files[file] = { size: result.size, sha256: result.sha256, ...(info.etag ? { etag: info.etag } : {}) };
    } catch (err) {
      throw describeFailure(err, context, file);
    }
  };

  await fetchFile(config);
  let weights = [weightsFile];
  await fetchFile(weightsFile);
  if (isWeightsIndex(weightsFile)) {
    try {
      weights = shardsOfIndex(await readFile(path.join(folder, weightsFile), 'utf8'), weightsFile);
    } catch (err) {
      throw new CheckpointError('repo-incomplete', `Model "${context.model}": ${(err as Error).message}.`, folder, { cause: err });
    }
    for (const shard of weights) await fetchFile(shard);
  }
  for (const file of optional) await fetchFile(file);

  await writeManifest(folder, {
    repo: ref.repo,
    revision: ref.revision,
    ...(commit ? { commit } : {}),
    endpoint: ref.endpoint,
    downloadedAt: new Date().toISOString(),
    config,
    weights,
    missing,
    files,
  });
  if (missing.length) http.log(`Model "${context.model}" has no ${missing.join(', ')}; built-in defaults apply`);

  return { folder, source: 'hub', repo: ref.repo, revision: ref.revision, commit, config, weights, weightsFile, missing };
}

/** A file left whole by an earlier, unfinished run is kept when its size and hash still match. */
async function verifiedExisting(dest: string, info: RemoteFile): Promise<{ size: number; sha256: string } | null> {
  if (info.size === undefined) return null;
  let size: number;
  try {
    size = (await stat(dest)).size;
  } catch {
    return null;
  }
  if (size !== info.size) return null;
  const sha256 = await sha256OfFile(dest);
  if (info.sha256 !== undefined && sha256 !== info.sha256) return null;
  return { size, sha256 };
}

function cacheState(context: Context): string {
  const where = existsSync(context.folder) ? 'is only partly in the cache' : 'is not in the cache';
  return `${where} (${context.folder})`;
}

function byHand(context: Context): string {
  return (
    `download the files (${ESSENTIAL_FILES.join(', ')}) from ${repoPageUrl(context.ref)} into a folder ` +
    `and set ${context.settingName}=/that/folder.`
  );
}

function describeFailure(err: unknown, context: Context, file?: string): CheckpointError {
  if (err instanceof CheckpointError) return err;
  const { model, ref, folder } = context;

  if (err instanceof HubNetworkError) {
    return new CheckpointError(
      'hub-unreachable',
      `Model "${model}" ${cacheState(context)} and the Hugging Face Hub at ${ref.endpoint} could not be reached ` +
        `(${err.code}). Connect to the internet once, or ${byHand(context)}`,
      folder,
      { cause: err },
    );
  }
  if (err instanceof HubHttpError) return describeHttpFailure(err.status, err.errorCode, err.url, context, file, err);

  if (err instanceof DownloadError) {
    const name = file ?? 'a file';
    switch (err.kind) {
      case 'http':
        return describeHttpFailure(err.details.status ?? 0, err.details.errorCode, fileUrl(ref, name), context, file, err);
      case 'size':
      case 'integrity':
        return new CheckpointError(
          'integrity',
          `Downloaded ${name} of model "${model}" does not match the Hugging Face Hub's record (${err.message}), so it ` +
            `was deleted from ${folder}. Start again to download it anew; if this repeats, something between here and ` +
            `the Hub alters downloads: ${byHand(context)}`,
          folder,
          { cause: err },
        );
      case 'filesystem':
        return new CheckpointError(
          'download-failed',
          `Cannot write ${name} of model "${model}" into the cache folder ${folder} (${err.message}; the partial file was removed). ` +
            `Free disk space or make the folder writable, or use another cache folder.`,
          folder,
          { cause: err },
        );
      case 'network':
        return new CheckpointError(
          'download-failed',
          `Downloading ${name} of model "${model}" failed after ${err.details.tries ?? context.tries} tries ` +
            `(${err.message}). What arrived is kept in ${folder} and the next start resumes from there. ` +
            `Check the connection and start again, or ${byHand(context)}`,
          folder,
          { cause: err },
        );
    }
  }

  const message = err instanceof Error ? err.message : String(err);
  return new CheckpointError(
    'download-failed',
    `Getting model "${model}" into ${folder} failed${file ? ` at ${file}` : ''}: ${message}`,
    folder,
    { cause: err },
  );
}

function describeHttpFailure(
  status: number,
  errorCode: string | undefined,
  url: string,
  context: Context,
  file: string | undefined,
  cause: unknown,
): CheckpointError {
  const { model, ref, folder, settingName } = context;
  const page = repoPageUrl(ref);
  const tokenHint = context.token
    ? 'if the repo is private, check that the token in HF_TOKEN can read it'
    : 'if the repo is private, set HF_TOKEN to a token that can read it';

  // The Hub answers 401 rather than 404 for a repo it does not show to anonymous callers.
  if (errorCode === 'RepoNotFound' || (status === 404 && !errorCode && !file)) {
    return new CheckpointError(
      'repo-not-found',
      `Model "${model}" was not found on the Hugging Face Hub (${ref.endpoint}/${ref.repo}, HTTP ${status}). ` +
        `Check the repo id in ${settingName}; ${tokenHint}.`,
      folder,
      { cause },
    );
  }
  if (errorCode === 'RevisionNotFound') {
    return new CheckpointError(
      'revision-not-found',
      `Revision "${ref.revision}" of model "${ref.repo}" was not found on the Hugging Face Hub (HTTP ${status}). ` +
        `Check the part after "@" in ${settingName}=${model}; without it, "main" is used.`,
      folder,
      { cause },
    );
  }
  if (status === 401 || status === 403) {
    const why = errorCode === 'GatedRepo' ? 'gated' : 'private or gated';
    const message = context.token
      ? `The Hugging Face Hub refused the token in HF_TOKEN for model "${model}" (HTTP ${status}${errorCode ? `, ${errorCode}` : ''}). ` +
        `Check that the token is valid and that its account has accepted the model's terms at ${page}.`
      : `Model "${model}" is ${why} on the Hugging Face Hub and needs an access token (HTTP ${status}${errorCode ? `, ${errorCode}` : ''}). ` +
        `Accept its terms at ${page} while logged in, then set HF_TOKEN to an access token of that account ` +
        `(${ref.endpoint}/settings/tokens).`;
    return new CheckpointError('unauthorised', message, folder, { cause });
  }
  if (status === 404) {
    return new CheckpointError(
      'repo-incomplete',
      `Model "${model}" on the Hugging Face Hub lists ${file ?? 'a file'} but it could not be downloaded (HTTP 404, ${url}).`,
      folder,
      { cause },
    );
  }
  return new CheckpointError(
    'hub-unreachable',
    `Model "${model}" ${cacheState(context)} and the Hugging Face Hub at ${ref.endpoint} answered HTTP ${status} ` +
      `for ${url}. Try again later, or ${byHand(context)}`,
    folder,
    { cause },
  );
}
