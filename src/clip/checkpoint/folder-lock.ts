// One writer per cache folder: two processes that start on the same model at once (two replicas
// on a shared volume, a server and an eval run) must not append to the same `.part` files. The
// lock is proper-lockfile's: an atomic mkdir of `<folder>.lock` whose mtime the owner refreshes,
// so the lock of a process that died — on this host or another — goes stale and is taken over.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import lockfile from 'proper-lockfile';

export interface FolderLockOptions {
  /** Told once when another process holds the lock and this one starts waiting. */
  onWait?: () => void;
  /** A lock not refreshed for this long is stale (the owner died). Default 60 s. */
  staleMs?: number;
  /** How often a waiting process tries again. Default 1 s. */
  pollMs?: number;
  /** Give up waiting after this long. Default 2 h (a large checkpoint on a slow line). */
  maxWaitMs?: number;
  /** Told when the lock was lost while held (its folder deleted, the clock jumped…). */
  onCompromised?: (err: Error) => void;
}

export class FolderLockTimeoutError extends Error {
  constructor(folder: string, waitedMs: number) {
    super(`another process kept the lock on ${folder} for ${Math.round(waitedMs / 1000)} s; gave up waiting (remove ${folder}.lock if no other process is running)`);
    this.name = 'FolderLockTimeoutError';
  }
}

/** Runs `fn` holding the lock on `folder` (which need not exist yet); waits while another process holds it. */
export async function withFolderLock<T>(folder: string, fn: () => Promise<T>, opts: FolderLockOptions = {}): Promise<T> {
  mkdirSync(dirname(folder), { recursive: true });
  const stale = Math.max(2_000, opts.staleMs ?? 60_000);
  const pollMs = opts.pollMs ?? 1_000;
  const maxWaitMs = opts.maxWaitMs ?? 2 * 60 * 60 * 1000;
  const base = {
    realpath: false,
    stale,
    update: Math.max(1_000, Math.floor(stale / 4)),
    // The default throws from a timer, which would take the whole process down.
    onCompromised: opts.onCompromised ?? (() => {}),
  };
  const started = Date.now();
  let release: () => Promise<void>;
  try {
    release = await lockfile.lock(folder, { ...base, retries: 0 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ELOCKED') throw err;
    opts.onWait?.();
    const retries = Math.max(1, Math.ceil(maxWaitMs / pollMs));
    try {
      release = await lockfile.lock(folder, { ...base, retries: { retries, factor: 1, minTimeout: pollMs, maxTimeout: pollMs } });
    } catch (waitErr) {
      if ((waitErr as NodeJS.ErrnoException).code === 'ELOCKED') throw new FolderLockTimeoutError(folder, Date.now() - started);
      throw waitErr;
    }
  }
  try {
    return await fn();
  } finally {
    await release().catch(() => {});
  }
}
