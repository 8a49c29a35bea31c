// A name → tensor lookup over weight files, and what the one-file sources (safetensors.ts,
// torch-checkpoint.ts) share: the open file, positioned reads, the entry map and closing.
import fs from 'node:fs';
import type { Tensor32 } from '../types.ts';

/** A name → tensor lookup over one file or a set of shards. */
export interface TensorSource {
  /** The files behind this source (one, or every shard). */
  readonly files: string[];
  names(): string[];
  has(name: string): boolean;
  shape(name: string): number[];
  dtype(name: string): string;
  /** Decodes the tensor to float32 (reads it from disk on each call). */
  get(name: string): Tensor32;
  /** Where a tensor lives, for error messages. */
  fileOf(name: string): string;
  metadata(): Record<string, string>;
  close(): void;
}

/** Fills `target` from `fd` at `position`; a short file is an error naming `file`. */
export function readFully(fd: number, target: Uint8Array, position: number, file: string): void {
  let done = 0;
  while (done < target.byteLength) {
    // readSync caps one call at ~2 GB, so loop.
    const chunk = Math.min(target.byteLength - done, 1 << 30);
    const n = fs.readSync(fd, target, done, chunk, position + done);
    if (n === 0) throw new Error(`${file}: unexpected end of file at byte ${position + done}`);
    done += n;
  }
}

/**
 * What every one-file tensor source shares: the name → entry map, the open file and its
 * closing. Subclasses say what an entry's shape and dtype are and how to decode it.
 */
export abstract class FileTensorSource<Entry> implements TensorSource {
  readonly files: string[];
  protected fd: number | undefined;

  constructor(
    readonly file: string,
    fd: number,
    protected readonly tensors: Map<string, Entry>,
  ) {
    this.files = [file];
    this.fd = fd;
  }

  abstract shape(name: string): number[];
  abstract dtype(name: string): string;
  abstract get(name: string): Tensor32;
  abstract metadata(): Record<string, string>;

  names(): string[] {
    return [...this.tensors.keys()];
  }
  has(name: string): boolean {
    return this.tensors.has(name);
  }
  /** The entry of `name`; an unknown name is an error naming the file. */
  protected entry(name: string): Entry {
    const t = this.tensors.get(name);
    if (!t) throw new Error(`${this.file}: no tensor named "${name}"`);
    return t;
  }
  fileOf(name: string): string {
    this.entry(name);
    return this.file;
  }
  /** The open file, or an error once closed. */
  protected openFd(): number {
    if (this.fd === undefined) throw new Error(`${this.file}: already closed`);
    return this.fd;
  }
  close(): void {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }
}
