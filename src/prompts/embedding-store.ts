// Class text embeddings kept on disk across restarts, under the in-memory LRU
// (embedding-cache.ts). A category's first request after a restart would otherwise wait for the
// text tower again (one ensemble is 220 prompts: ~1.6 s for ViT-B/16 on two cores). One small
// file per cache key (which names the model's graphs and the prompt texts), written whole
// (temporary file, then rename); a file that does not read back as expected is ignored and
// recomputed. The number of files is bounded so arbitrary custom prompts cannot fill a disk.
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFailureFields, writeFileAtomic } from '../util/atomic-write.ts';
import type { ClassEmbeddings } from './embedding-cache.ts';

const MAGIC = 'CEMB';
const HEADER_BYTES = 4 + 4 + 32; // magic, dim, sha256 of the key

export class EmbeddingStore {
  private files: number;
  private warnedFull = false;

  constructor(
    readonly dir: string,
    readonly maxFiles = 10_000,
    private readonly log: (msg: string, fields?: Record<string, unknown>) => void = () => {},
  ) {
    mkdirSync(dir, { recursive: true });
    this.files = readdirSync(dir).filter((f) => f.endsWith('.bin')).length;
  }

  private digest(key: string): Buffer {
    return createHash('sha256').update(key).digest();
  }

  private path(digest: Buffer): string {
    return join(this.dir, `${digest.toString('hex').slice(0, 40)}.bin`);
  }

  /** The stored embeddings of `key` with `dim` values each, or undefined (absent or unusable). */
  async read(key: string, dim: number): Promise<ClassEmbeddings | undefined> {
    const digest = this.digest(key);
    let bytes: Buffer;
    try {
      bytes = await readFile(this.path(digest));
    } catch {
      return undefined;
    }
    if (
      bytes.length !== HEADER_BYTES + 8 * dim ||
      bytes.toString('latin1', 0, 4) !== MAGIC ||
      bytes.readUInt32LE(4) !== dim ||
      !bytes.subarray(8, HEADER_BYTES).equals(digest)
    ) {
      return undefined;
    }
    // Copies: the file's buffer may sit at an offset no Float32Array can start at.
    const values = new Float32Array(bytes.buffer.slice(bytes.byteOffset + HEADER_BYTES, bytes.byteOffset + bytes.length));
    const normal = values.slice(0, dim);
    const abnormal = values.slice(dim);
    if (![...normal, ...abnormal].every(Number.isFinite)) return undefined;
    return { normal, abnormal };
  }

  /** Stores `value` under `key`; never throws (the embeddings are still served from memory). */
  async write(key: string, value: ClassEmbeddings): Promise<void> {
    if (this.files >= this.maxFiles) {
      if (!this.warnedFull) this.log(`text embedding store ${this.dir} holds ${this.files} files, its limit; new ones are kept in memory only`);
      this.warnedFull = true;
      return;
    }
    const dim = value.normal.length;
    const digest = this.digest(key);
    const bytes = Buffer.alloc(HEADER_BYTES + 8 * dim);
    bytes.write(MAGIC, 0, 'latin1');
    bytes.writeUInt32LE(dim, 4);
    digest.copy(bytes, 8);
    Buffer.from(value.normal.buffer, value.normal.byteOffset, 4 * dim).copy(bytes, HEADER_BYTES);
    Buffer.from(value.abnormal.buffer, value.abnormal.byteOffset, 4 * dim).copy(bytes, HEADER_BYTES + 4 * dim);
    const file = this.path(digest);
    try {
      await writeFileAtomic(file, bytes);
      this.files += 1;
    } catch (err) {
      // Kept in memory only; the temporary file is gone (writeFileAtomic). Names the file.
      this.log(`text embeddings not stored: ${(err as Error).message}`, { ...writeFailureFields(err), level: 'warn' });
    }
  }
}
