// Files that appear whole or not at all: written under a temporary name in the same folder
// (so the rename stays on one file system, where it is atomic), optionally fsynced, then
// renamed over the target. On any failure the temporary file is removed and the target is
// left as it was, and the error (FileWriteError) names the target and says ENOSPC in words.
// A reader — another process, or this one after a crash — never sees half a file under the
// real name.
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';

/** Why writing `path` failed, in words (ENOSPC: 'no space left on device writing <path>'). */
export function writeFailureMessage(path: string, err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT') return `no space left on device writing ${path}${code === 'EDQUOT' ? ' (disk quota exceeded)' : ''}`;
  if (code === 'EROFS') return `read-only file system: cannot write ${path}`;
  if (code === 'EACCES' || code === 'EPERM') return `no permission to write ${path}`;
  return `could not write ${path}: ${err instanceof Error ? err.message : String(err)}`;
}

/**
 * A failed write of a cache or data file, naming the file (the system's own message names at
 * most the temporary one) and keeping the system's code (ENOSPC…). Its temporary file is gone.
 */
export class FileWriteError extends Error {
  override readonly name = 'FileWriteError';
  readonly code?: string;
  constructor(
    readonly path: string,
    cause: unknown,
  ) {
    super(writeFailureMessage(path, cause), { cause });
    this.code = (cause as NodeJS.ErrnoException | undefined)?.code;
  }
}

/** Log fields of a write failure, for a JSON log line: the file and the system's code. */
export function writeFailureFields(err: unknown): { path?: string; code?: string } {
  return err instanceof FileWriteError ? { path: err.path, code: err.code } : { code: (err as NodeJS.ErrnoException | undefined)?.code };
}

const asWriteError = (target: string, err: unknown) => (err instanceof FileWriteError ? err : new FileWriteError(target, err));

export interface AtomicWriteOptions {
  /**
   * Flush the data to the disk before the rename, so that after a power loss the target is
   * the old file or the new one, never an empty one. Costs a disk round trip; default off.
   */
  fsync?: boolean;
}

let counter = 0;

/** A fresh name beside `target`: the process id and a counter keep concurrent writers apart. */
export function temporaryPath(target: string): string {
  counter += 1;
  return `${target}.tmp-${process.pid}-${counter}`;
}

/** Writes all of `bytes` at the file position: writeSync may write less than asked, and takes under 2 GiB a call. */
export function writeFully(fd: number, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.byteLength) done += writeSync(fd, bytes, done, Math.min(bytes.byteLength - done, 1 << 30));
}

const asBytes = (data: string | Uint8Array): Uint8Array => (typeof data === 'string' ? Buffer.from(data, 'utf8') : data);

/**
 * A temporary file open for writing that becomes `target` on commit(). For content written
 * piece by piece over a longer time (the graph builder's weight file, streamed tensors).
 */
export class AtomicFileSync {
  readonly fd: number;
  readonly temporary: string;
  private open = true;

  constructor(
    readonly target: string,
    private readonly options: AtomicWriteOptions = {},
  ) {
    this.temporary = temporaryPath(target);
    try {
      this.fd = openSync(this.temporary, 'w');
    } catch (err) {
      throw asWriteError(target, err);
    }
  }

  /** On failure the temporary file is removed and a FileWriteError naming the target thrown. */
  write(bytes: Uint8Array): void {
    try {
      writeFully(this.fd, bytes);
    } catch (err) {
      this.abandon();
      throw asWriteError(this.target, err);
    }
  }

  /** Closes and renames into place; on failure the temporary file is removed and the error thrown. */
  commit(): void {
    try {
      if (this.options.fsync) fsyncSync(this.fd);
      this.close();
      renameSync(this.temporary, this.target);
    } catch (err) {
      this.abandon();
      throw asWriteError(this.target, err);
    }
  }

  /** Closes and removes the temporary file; the target is untouched. Safe to call twice. */
  abandon(): void {
    try {
      this.close();
    } catch {
      // closing may report the failed write again; the file goes either way
    }
    rmSync(this.temporary, { force: true });
  }

  private close(): void {
    if (!this.open) return;
    this.open = false;
    closeSync(this.fd);
  }
}

/** `write` fills the temporary file through its descriptor; then it becomes `target`. */
export function writeAtomicSync(target: string, write: (file: AtomicFileSync) => void, options: AtomicWriteOptions = {}): void {
  const file = new AtomicFileSync(target, options);
  try {
    write(file);
  } catch (err) {
    file.abandon();
    throw err;
  }
  file.commit();
}

export function writeFileAtomicSync(target: string, data: string | Uint8Array, options: AtomicWriteOptions = {}): void {
  writeAtomicSync(target, (file) => file.write(asBytes(data)), options);
}

export async function writeFileAtomic(target: string, data: string | Uint8Array, options: AtomicWriteOptions = {}): Promise<void> {
  const temporary = temporaryPath(target);
  try {
    const handle = await open(temporary, 'w');
    try {
      await handle.writeFile(asBytes(data));
      if (options.fsync) await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, target);
  } catch (err) {
    await rm(temporary, { force: true }).catch(() => {});
    throw asWriteError(target, err);
  }
}
