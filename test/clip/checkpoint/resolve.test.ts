// resolveCheckpoint against a real HTTP server on 127.0.0.1 that imitates the Hugging Face Hub's
// file endpoints: the model API, `resolve` with ETag / x-linked-etag / x-linked-size, a redirect
// of LFS files to a "CDN" path, Range requests, gated repos, and injected faults.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { cacheFolder } from '../../../src/clip/checkpoint/cache-folder.ts';
import { withFolderLock } from '../../../src/clip/checkpoint/folder-lock.ts';
import {
  CheckpointError,
  MANIFEST_FILE,
  resolveCheckpoint,
  type DownloadProgressEvent,
  type ResolveCheckpointOptions,
} from '../../../src/clip/checkpoint/resolve.ts';

// ---------- the fake Hub ----------

interface FakeFile {
  bytes: Buffer;
  /** Served like an LFS file: a 302 to /cdn/... carrying x-linked-etag (sha256) and x-linked-size. */
  lfs?: boolean;
  /** Announce this sha256 instead of the real one (a corrupted download). */
  claimedSha256?: string;
}

interface FakeRepo {
  sha: string;
  files: Record<string, FakeFile>;
  /** Files need `Authorization: Bearer good-token`. */
  gated?: boolean;
}

interface SeenRequest {
  method: string;
  path: string;
  range?: string;
  authorization?: string;
}

const GOOD_TOKEN = 'good-token';

class FakeHub {
  readonly repos = new Map<string, FakeRepo>(); // key: "owner/name"
  readonly requests: SeenRequest[] = [];
  /** File path (/cdn/... or /owner/name/resolve/...) → bytes after which the first GET is cut. */
  readonly cutOnce = new Map<string, number>();
  /** Paths that answer every Range request with the whole file (HTTP 200). */
  readonly ignoreRange = new Set<string>();
  apiDown = false;
  private server = http.createServer((req, res) => this.handle(req, res));
  endpoint = '';

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.endpoint = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  reset(): void {
    this.requests.length = 0;
    this.cutOnce.clear();
    this.ignoreRange.clear();
    this.apiDown = false;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://x');
    const p = decodeURIComponent(url.pathname);
    this.requests.push({
      method: req.method ?? '',
      path: p,
      range: req.headers.range,
      authorization: req.headers.authorization,
    });

    const api = /^\/api\/models\/([^/]+\/[^/]+)\/revision\/(.+)$/.exec(p);
    if (api) return this.handleApi(res, api[1]!, api[2]!);

    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(p);
    if (resolve) return this.handleResolve(req, res, resolve[1]!, resolve[2]!, resolve[3]!);

    const cdn = /^\/cdn\/([^/]+\/[^/]+)\/(.+)$/.exec(p);
    if (cdn) {
      const file = this.repos.get(cdn[1]!)?.files[cdn[2]!];
      if (file) return this.serveBytes(req, res, p, file.bytes, { etag: '"s3-etag-not-a-sha"' });
    }
    fail(res, 404, 'EntryNotFound');
  }

  private handleApi(res: http.ServerResponse, repoId: string, revision: string): void {
    if (this.apiDown) return fail(res, 500);
    const repo = this.repos.get(repoId);
    if (!repo) return fail(res, 404, 'RepoNotFound');
    if (revision !== 'main') return fail(res, 404, 'RevisionNotFound');
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ id: repoId, sha: repo.sha, siblings: Object.keys(repo.files).map((rfilename) => ({ rfilename })) }));
  }

  private handleResolve(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    repoId: string,
    revision: string,
    fileName: string,
  ): void {
    const repo = this.repos.get(repoId);
    if (!repo) return fail(res, 404, 'RepoNotFound');
    if (revision !== 'main') return fail(res, 404, 'RevisionNotFound');
    if (repo.gated && req.headers.authorization !== `Bearer ${GOOD_TOKEN}`) return fail(res, 401, 'GatedRepo');
    const file = repo.files[fileName];
    if (!file) return fail(res, 404, 'EntryNotFound');

    res.setHeader('x-repo-commit', repo.sha);
    if (file.lfs) {
      const sha256 = file.claimedSha256 ?? sha256Hex(file.bytes);
      res.writeHead(302, {
        location: `/cdn/${repoId}/${fileName}`,
        etag: `"${sha256}"`,
        'x-linked-etag': `"${sha256}"`,
        'x-linked-size': String(file.bytes.length),
      });
      res.end();
      return;
    }
    this.serveBytes(req, res, req.url ? decodeURIComponent(new URL(req.url, 'http://x').pathname) : '', file.bytes, {
      etag: `"${gitBlobSha1(file.bytes)}"`,
    });
  }

  private serveBytes(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    key: string,
    bytes: Buffer,
    headers: Record<string, string>,
  ): void {
    for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
    res.setHeader('accept-ranges', 'bytes');
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    let start = 0;
    if (range && !this.ignoreRange.has(key)) {
      start = Number(range[1]);
      if (start >= bytes.length) {
        res.writeHead(416, { 'content-range': `bytes */${bytes.length}` });
        res.end();
        return;
      }
      res.writeHead(206, {
        'content-range': `bytes ${start}-${bytes.length - 1}/${bytes.length}`,
        'content-length': String(bytes.length - start),
      });
    } else {
      res.writeHead(200, { 'content-length': String(bytes.length) });
    }
    if (req.method === 'HEAD') return void res.end();

    const cutAfter = this.cutOnce.get(key);
    if (cutAfter !== undefined) {
      // Send part of the body, then drop the connection as a flaky network would.
      this.cutOnce.delete(key);
      res.write(bytes.subarray(start, start + cutAfter), () => setTimeout(() => req.socket.destroy(), 30));
      return;
    }
    res.end(bytes.subarray(start));
  }
}

function fail(res: http.ServerResponse, status: number, errorCode?: string): void {
  if (errorCode) res.setHeader('x-error-code', errorCode);
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ error: errorCode ?? `HTTP ${status}` }));
}

function sha256Hex(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function gitBlobSha1(bytes: Buffer): string {
  return createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');
}

function json(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value));
}

// ---------- fixtures ----------

const hub = new FakeHub();
let workDir: string;
let cacheDir: string;
let logs: string[];
const savedToken = process.env.HF_TOKEN;

function tinyClipRepo(): FakeRepo {
  return {
    sha: 'a'.repeat(40),
    files: {
      'config.json': { bytes: json({ model_type: 'clip', projection_dim: 512 }) },
      'model.safetensors': { bytes: randomBytes(300_000), lfs: true },
      'tokenizer.json': { bytes: randomBytes(5_000) },
      'tokenizer_config.json': { bytes: json({ model_max_length: 77 }) },
      'preprocessor_config.json': { bytes: json({ crop_size: 224 }) },
      'README.md': { bytes: Buffer.from('# tiny') },
    },
  };
}

function options(extra: Partial<ResolveCheckpointOptions> = {}): ResolveCheckpointOptions {
  return {
    cacheDir,
    offline: false,
    endpoint: hub.endpoint,
    retryDelayMs: 5,
    log: (msg) => logs.push(msg),
    ...extra,
  };
}

/** A fetch that fails the test if anything reaches the network. */
const noNetwork: typeof fetch = async (input) => {
  throw new Error(`unexpected network request: ${String(input)}`);
};

async function rejection(promise: Promise<unknown>): Promise<CheckpointError> {
  const error = await promise.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(error).toBeInstanceOf(CheckpointError);
  return error as CheckpointError;
}

beforeAll(async () => {
  delete process.env.HF_TOKEN;
  await hub.start();
  hub.repos.set('acme/tiny-clip', tinyClipRepo());
});

afterAll(async () => {
  await hub.stop();
  if (savedToken !== undefined) process.env.HF_TOKEN = savedToken;
});

beforeEach(() => {
  workDir = mkdtempSync(path.join(tmpdir(), 'checkpoint-source-'));
  cacheDir = path.join(workDir, 'cache');
  logs = [];
  hub.reset();
});

afterEach(() => {
  rmSync(workDir, { recursive: true, force: true });
});

// ---------- tests ----------

describe('resolveCheckpoint from the Hub', () => {
  it('downloads a repo into {cacheDir}/{owner}--{name}/{revision} with a manifest', async () => {
    const repo = hub.repos.get('acme/tiny-clip')!;
    const events: DownloadProgressEvent[] = [];
    const result = await resolveCheckpoint('acme/tiny-clip', options({ onProgress: (e) => events.push(e), token: 'tok' }));

    const folder = path.join(cacheDir, 'acme--tiny-clip', 'main');
    expect(result).toEqual({
      folder,
      source: 'hub',
      repo: 'acme/tiny-clip',
      revision: 'main',
      commit: repo.sha,
      config: 'config.json',
      weights: ['model.safetensors'],
      weightsFile: 'model.safetensors',
      missing: ['special_tokens_map.json'],
    });
    for (const name of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'preprocessor_config.json']) {
      expect(readFileSync(path.join(folder, name)).equals(repo.files[name]!.bytes), name).toBe(true);
    }
    expect(existsSync(path.join(folder, 'README.md'))).toBe(false);

    const manifest = JSON.parse(readFileSync(path.join(folder, MANIFEST_FILE), 'utf8'));
    expect(manifest.files['model.safetensors']).toEqual({
      size: 300_000,
      sha256: sha256Hex(repo.files['model.safetensors']!.bytes),
      etag: sha256Hex(repo.files['model.safetensors']!.bytes),
    });
    expect(manifest.missing).toEqual(['special_tokens_map.json']);

    // The LFS file went through the redirect; the token went to the Hub.
    expect(hub.requests.some((r) => r.method === 'GET' && r.path === '/cdn/acme/tiny-clip/model.safetensors')).toBe(true);
    expect(hub.requests.every((r) => r.authorization === 'Bearer tok')).toBe(true);
    const last = events.filter((e) => e.file === 'model.safetensors').at(-1);
    expect(last).toEqual({ file: 'model.safetensors', received: 300_000, total: 300_000 });
  });

  it('serves a second start from the complete cache without any request', async () => {
    const first = await resolveCheckpoint('acme/tiny-clip', options());
    const requestsAfterFirst = hub.requests.length;

    const second = await resolveCheckpoint('acme/tiny-clip', options({ fetch: noNetwork }));
    expect(second).toEqual(first);
    expect(hub.requests.length).toBe(requestsAfterFirst);
  });

  it('resumes with a Range request after the connection drops mid-file', async () => {
    const bytes = randomBytes(400_000);
    hub.repos.set('acme/flaky', { sha: 'b'.repeat(40), files: { 'config.json': { bytes: json({}) }, 'model.safetensors': { bytes, lfs: true } } });
    hub.cutOnce.set('/cdn/acme/flaky/model.safetensors', 150_000);

    const result = await resolveCheckpoint('acme/flaky', options());

    const gets = hub.requests.filter((r) => r.method === 'GET' && r.path === '/cdn/acme/flaky/model.safetensors');
    expect(gets).toHaveLength(2);
    expect(gets[0]!.range).toBeUndefined();
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(gets[1]!.range ?? '')?.[1]);
    expect(resumedAt).toBeGreaterThan(0);
    expect(resumedAt).toBeLessThanOrEqual(150_000);
    expect(readFileSync(path.join(result.folder, 'model.safetensors')).equals(bytes)).toBe(true);
    expect(existsSync(path.join(result.folder, 'model.safetensors.part'))).toBe(false);
  });

  it('starts over when the server ignores Range and answers 200', async () => {
    const repo = hub.repos.get('acme/tiny-clip')!;
    const folder = path.join(cacheDir, 'acme--tiny-clip', 'main');
    mkdirSync(folder, { recursive: true });
    // A stale .part from an earlier start, with wrong bytes.
    writeFileSync(path.join(folder, 'model.safetensors.part'), randomBytes(1_000));
    hub.ignoreRange.add('/cdn/acme/tiny-clip/model.safetensors');

    await resolveCheckpoint('acme/tiny-clip', options());

    const get = hub.requests.find((r) => r.method === 'GET' && r.path === '/cdn/acme/tiny-clip/model.safetensors');
    expect(get?.range).toBe('bytes=1000-');
    expect(readFileSync(path.join(folder, 'model.safetensors')).equals(repo.files['model.safetensors']!.bytes)).toBe(true);
  });

  it('refuses a file whose sha256 does not match, leaving no file behind', async () => {
    hub.repos.set('acme/tampered', {
      sha: 'c'.repeat(40),
      files: {
        'config.json': { bytes: json({}) },
        'model.safetensors': { bytes: randomBytes(10_000), lfs: true, claimedSha256: 'f'.repeat(64) },
      },
    });
    const error = await rejection(resolveCheckpoint('acme/tampered', options()));

    const folder = path.join(cacheDir, 'acme--tampered', 'main');
    expect(error.kind).toBe('integrity');
    expect(error.folder).toBe(folder);
    expect(error.message).toContain('model.safetensors');
    expect(error.message).toContain(`expected sha256 ${'f'.repeat(64)}`);
    expect(existsSync(path.join(folder, 'model.safetensors'))).toBe(false);
    expect(existsSync(path.join(folder, 'model.safetensors.part'))).toBe(false);
    expect(existsSync(path.join(folder, MANIFEST_FILE))).toBe(false);
  });

  it('works offline from a complete cache, and fails offline without one naming the folder', async () => {
    const online = await resolveCheckpoint('acme/tiny-clip', options());
    const offline = await resolveCheckpoint('acme/tiny-clip', options({ offline: true, fetch: noNetwork }));
    expect(offline).toEqual(online);

    const error = await rejection(resolveCheckpoint('acme/other', options({ offline: true, fetch: noNetwork })));
    const folder = path.join(cacheDir, 'acme--other', 'main');
    expect(error.kind).toBe('offline-not-cached');
    expect(error.folder).toBe(folder);
    expect(error.message).toBe(
      `Model "acme/other" is not in the cache (${folder}) and offline mode is on (HF_HUB_OFFLINE=1), so the ` +
        `Hugging Face Hub was not contacted. Start once with offline mode off and internet access to fill the cache, ` +
        `or download the files (config.json, model.safetensors, tokenizer.json, preprocessor_config.json) from ` +
        `${hub.endpoint}/acme/other into a folder and set MODEL=/that/folder.`,
    );
  });

  it('explains an unreachable Hub with the cache folder and what to do', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const endpoint = `http://127.0.0.1:${port}`;

    const error = await rejection(resolveCheckpoint('openai/clip-vit-base-patch16', options({ endpoint })));
    const folder = path.join(cacheDir, 'openai--clip-vit-base-patch16', 'main');
    expect(error.kind).toBe('hub-unreachable');
    expect(error.message).toBe(
      `Model "openai/clip-vit-base-patch16" is not in the cache (${folder}) and the Hugging Face Hub at ${endpoint} ` +
        `could not be reached (ECONNREFUSED). Connect to the internet once, or download the files (config.json, ` +
        `model.safetensors, tokenizer.json, preprocessor_config.json) from ${endpoint}/openai/clip-vit-base-patch16 ` +
        `into a folder and set MODEL=/that/folder.`,
    );
  });

  it('names a repo or revision the Hub does not have', async () => {
    const missingRepo = await rejection(resolveCheckpoint('acme/no-such-model', options()));
    expect(missingRepo.kind).toBe('repo-not-found');
    expect(missingRepo.message).toBe(
      `Model "acme/no-such-model" was not found on the Hugging Face Hub (${hub.endpoint}/acme/no-such-model, HTTP 404). ` +
        `Check the repo id in MODEL; if the repo is private, set HF_TOKEN to a token that can read it.`,
    );

    const missingRevision = await rejection(resolveCheckpoint('acme/tiny-clip@v9', options()));
    expect(missingRevision.kind).toBe('revision-not-found');
    expect(missingRevision.folder).toBe(path.join(cacheDir, 'acme--tiny-clip', 'v9'));
    expect(missingRevision.message).toContain('Revision "v9" of model "acme/tiny-clip" was not found');
  });

  it('asks for HF_TOKEN on a gated repo, and downloads it with the token', async () => {
    hub.repos.set('acme/gated', { sha: 'd'.repeat(40), gated: true, files: tinyClipRepo().files });

    const error = await rejection(resolveCheckpoint('acme/gated', options()));
    expect(error.kind).toBe('unauthorised');
    expect(error.message).toContain('HF_TOKEN');
    expect(error.message).toContain('HTTP 401, GatedRepo');

    const result = await resolveCheckpoint('acme/gated', options({ token: GOOD_TOKEN }));
    expect(result.weights).toEqual(['model.safetensors']);
  });

  it('probes files with HEAD when the API is down, and takes open_clip repos', async () => {
    const weights = randomBytes(20_000);
    hub.repos.set('acme/open-clip', {
      sha: 'e'.repeat(40),
      files: {
        'open_clip_config.json': { bytes: json({ model_cfg: {} }) },
        'open_clip_pytorch_model.bin': { bytes: randomBytes(100), lfs: true },
        'open_clip_model.safetensors': { bytes: weights, lfs: true },
      },
    });
    hub.apiDown = true;

    const result = await resolveCheckpoint('acme/open-clip', options({ tries: 2 }));

    expect(result.config).toBe('open_clip_config.json');
    expect(result.weights).toEqual(['open_clip_model.safetensors']);
    expect(result.missing).toEqual(['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'preprocessor_config.json']);
    expect(result.commit).toBe('e'.repeat(40));
    expect(readFileSync(path.join(result.folder, 'open_clip_model.safetensors')).equals(weights)).toBe(true);
    expect(hub.requests.filter((r) => r.path.startsWith('/api/'))).toHaveLength(2); // retried once
    expect(hub.requests.some((r) => r.method === 'HEAD' && r.path.endsWith('/config.json'))).toBe(true);
  });

  it('downloads the shards named by model.safetensors.index.json', async () => {
    const shard1 = randomBytes(8_000);
    const shard2 = randomBytes(9_000);
    const index = { metadata: {}, weight_map: { a: 'model-00001-of-00002.safetensors', b: 'model-00002-of-00002.safetensors', c: 'model-00001-of-00002.safetensors' } };
    hub.repos.set('acme/sharded', {
      sha: 'f'.repeat(40),
      files: {
        'config.json': { bytes: json({}) },
        'model.safetensors.index.json': { bytes: json(index) },
        'model-00001-of-00002.safetensors': { bytes: shard1, lfs: true },
        'model-00002-of-00002.safetensors': { bytes: shard2, lfs: true },
      },
    });

    const result = await resolveCheckpoint('acme/sharded', options());
    expect(result.weights).toEqual(['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']);
    expect(readFileSync(path.join(result.folder, 'model-00002-of-00002.safetensors')).equals(shard2)).toBe(true);
  });

  it('downloads the shards named by pytorch_model.bin.index.json', async () => {
    const index = { metadata: {}, weight_map: { a: 'pytorch_model-00001-of-00002.bin', b: 'pytorch_model-00002-of-00002.bin' } };
    hub.repos.set('acme/sharded-bin', {
      sha: '9'.repeat(40),
      files: {
        'config.json': { bytes: json({}) },
        'pytorch_model.bin.index.json': { bytes: json(index) },
        'pytorch_model-00001-of-00002.bin': { bytes: randomBytes(3_000), lfs: true },
        'pytorch_model-00002-of-00002.bin': { bytes: randomBytes(4_000), lfs: true },
      },
    });
    const result = await resolveCheckpoint('acme/sharded-bin', options());
    expect(result.weights).toEqual(['pytorch_model-00001-of-00002.bin', 'pytorch_model-00002-of-00002.bin']);
    expect(existsSync(path.join(result.folder, 'pytorch_model-00002-of-00002.bin'))).toBe(true);
  });

  it('takes a PyTorch .bin when the repo has no safetensors', async () => {
    const weights = randomBytes(5_000);
    hub.repos.set('acme/bin-only', {
      sha: '1'.repeat(40),
      files: { 'config.json': { bytes: json({}) }, 'pytorch_model.bin': { bytes: weights, lfs: true } },
    });
    const result = await resolveCheckpoint('acme/bin-only', options());
    expect(result.weights).toEqual(['pytorch_model.bin']);
    expect(readFileSync(path.join(result.folder, 'pytorch_model.bin')).equals(weights)).toBe(true);
  });

  it('reports a repo without readable weights, naming the files looked for and the ones it has', async () => {
    hub.repos.set('acme/onnx-only', {
      sha: '1'.repeat(40),
      files: { 'config.json': { bytes: json({}) }, 'model.onnx': { bytes: randomBytes(100), lfs: true } },
    });
    const error = await rejection(resolveCheckpoint('acme/onnx-only', options()));
    expect(error.kind).toBe('repo-incomplete');
    expect(error.message).toContain(
      'looked for model.safetensors, model.safetensors.index.json, open_clip_model.safetensors, open_clip_pytorch_model.safetensors, pytorch_model.bin, pytorch_model.bin.index.json, open_clip_pytorch_model.bin',
    );
    expect(error.message).toContain('It has model.onnx, but only safetensors files and PyTorch zip checkpoints (.bin) can be read');
  });
});

describe('two processes on one cache folder', () => {
  const weightGets = () => hub.requests.filter((r) => r.method === 'GET' && r.path === '/cdn/acme/tiny-clip/model.safetensors').length;

  it('waits while another holder has the folder lock, without touching the network, then downloads', async () => {
    const folder = cacheFolder(cacheDir, 'acme', 'tiny-clip', 'main');
    let letGo!: () => void;
    let held!: () => void;
    const holding = new Promise<void>((resolve) => (held = resolve));
    const other = withFolderLock(folder, () => {
      held();
      return new Promise<void>((resolve) => (letGo = resolve));
    });
    await holding;
    const resolving = resolveCheckpoint('acme/tiny-clip', options());
    await new Promise((r) => setTimeout(r, 300));
    expect(logs.some((l) => l.startsWith('Waiting for another process that is downloading model "acme/tiny-clip"'))).toBe(true);
    expect(hub.requests).toHaveLength(0);
    letGo();
    await other;
    const result = await resolving;
    expect(result.weights).toEqual(['model.safetensors']);
    expect(weightGets()).toBe(1);
    expect(existsSync(`${folder}.lock`)).toBe(false);
  });

  it('two concurrent starts download the weights once; the second takes the finished folder', async () => {
    const [a, b] = await Promise.all([resolveCheckpoint('acme/tiny-clip', options()), resolveCheckpoint('acme/tiny-clip', options())]);
    expect(a.folder).toBe(b.folder);
    expect(weightGets()).toBe(1);
    expect(readFileSync(path.join(a.folder, 'model.safetensors')).equals(hub.repos.get('acme/tiny-clip')!.files['model.safetensors'].bytes)).toBe(true);
  });

  it('takes over the lock of a process that died (not refreshed for over a minute)', async () => {
    const folder = cacheFolder(cacheDir, 'acme', 'tiny-clip', 'main');
    mkdirSync(`${folder}.lock`, { recursive: true });
    const old = new Date(Date.now() - 5 * 60_000);
    utimesSync(`${folder}.lock`, old, old);
    const result = await resolveCheckpoint('acme/tiny-clip', options());
    expect(result.weights).toEqual(['model.safetensors']);
    expect(logs.some((l) => l.startsWith('Waiting'))).toBe(false);
  });
});

describe('resolveCheckpoint from a local folder', () => {
  it('returns the folder and what it holds', async () => {
    const folder = path.join(workDir, 'my-clip');
    mkdirSync(folder);
    writeFileSync(path.join(folder, 'config.json'), '{}');
    writeFileSync(path.join(folder, 'model.safetensors'), randomBytes(100));
    writeFileSync(path.join(folder, 'tokenizer.json'), '{}');

    const result = await resolveCheckpoint(folder, options({ fetch: noNetwork }));
    expect(result).toEqual({
      folder,
      source: 'local',
      config: 'config.json',
      weights: ['model.safetensors'],
      weightsFile: 'model.safetensors',
      missing: ['tokenizer_config.json', 'special_tokens_map.json', 'preprocessor_config.json'],
    });
    expect(hub.requests).toHaveLength(0);
  });

  it('names the files it looked for when the weights are missing', async () => {
    const folder = path.join(workDir, 'no-weights');
    mkdirSync(folder);
    writeFileSync(path.join(folder, 'config.json'), '{}');

    const error = await rejection(resolveCheckpoint(folder, options()));
    expect(error.kind).toBe('local-incomplete');
    expect(error.folder).toBe(folder);
    expect(error.message).toBe(
      `Model folder ${folder} has no weights: looked for model.safetensors, model.safetensors.index.json, ` +
        `open_clip_model.safetensors, open_clip_pytorch_model.safetensors, pytorch_model.bin, pytorch_model.bin.index.json, open_clip_pytorch_model.bin. Put the checkpoint's files (config.json, ` +
        `model.safetensors, tokenizer.json, preprocessor_config.json) there, or set MODEL to a Hugging Face repo id ` +
        `such as openai/clip-vit-base-patch16.`,
    );
  });

  it('says when the folder does not exist', async () => {
    const folder = path.join(workDir, 'nowhere');
    const error = await rejection(resolveCheckpoint(folder, options()));
    expect(error.kind).toBe('local-missing');
    expect(error.message).toContain(`Model folder ${folder} does not exist`);
  });

  it('rejects a setting that is neither a folder nor a repo id', async () => {
    const error = await rejection(resolveCheckpoint('not-a-repo-id', options()));
    expect(error.kind).toBe('invalid-setting');
    expect(error.message).toContain('owner/name or owner/name@revision');
  });
});
