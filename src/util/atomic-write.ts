// Files that appear whole or not at all: written under a temporary name in the same folder
// (so the rename stays on one file system, where it is atomic), optionally fsynced, then
// renamed over the target. On any failure the temporary file is removed and the target is
// left as it was. A reader — another process, or this one after a crash — never sees half a
// file under the real name.
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';

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
    this.fd = openSync(this.temporary, 'w');
  }

  write(bytes: Uint8Array): void {
    writeFully(this.fd, bytes);
  }

  /** Closes and renames into place; on failure the temporary file is removed and the error thrown. */
  commit(): void {
    try {
      if (this.options.fsync) fsyncSync(this.fd);
      this.close();
      renameSync(this.temporary, this.target);
    } catch (err) {
      this.abandon();
      throw err;
    }
  }

  /** Closes and removes the temporary file; the target is untouched. Safe to call twice. */
  abandon(): void {
    this.close();
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
    throw err;
  }
}
