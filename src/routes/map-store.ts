// The PNGs behind map URLs (format=url): held in memory for a bounded time (MAP_URL_TTL_MS)
// and a bounded number of bytes (MAP_URL_MAX_BYTES), the oldest dropped first. Tokens are 32
// random bytes: a URL cannot be guessed, only handed out. Per process: a replica behind a load
// balancer serves only the maps it rendered (no sticky sessions, no shared store, yet).
import { randomBytes } from 'node:crypto';

export interface StoredMap {
  token: string;
  /** Epoch milliseconds after which the map is gone. */
  expiresAt: number;
}

export class MapStore {
  // A Map iterates in insertion order and every entry lives ttlMs: oldest first is soonest to expire.
  private readonly entries = new Map<string, { png: Buffer; expiresAt: number }>();
  private heldBytes = 0;

  constructor(
    readonly ttlMs: number,
    readonly maxBytes: number,
    private readonly now: () => number = Date.now,
  ) {}

  get bytes(): number {
    return this.heldBytes;
  }

  get size(): number {
    return this.entries.size;
  }

  /** Keeps `png`, dropping expired maps and then the oldest until it fits; undefined if it can never fit. */
  put(png: Buffer): StoredMap | undefined {
    if (png.length > this.maxBytes) return undefined;
    this.sweep();
    for (const [token, e] of this.entries) {
      if (this.heldBytes + png.length <= this.maxBytes) break;
      this.drop(token, e.png.length);
    }
    const token = randomBytes(32).toString('base64url');
    const expiresAt = this.now() + this.ttlMs;
    this.entries.set(token, { png, expiresAt });
    this.heldBytes += png.length;
    return { token, expiresAt };
  }

  /** The PNG and its expiry, or undefined: unknown, expired or dropped (the caller cannot tell, nor need to). */
  get(token: string): { png: Buffer; expiresAt: number } | undefined {
    const e = this.entries.get(token);
    if (!e) return undefined;
    if (e.expiresAt <= this.now()) {
      this.drop(token, e.png.length);
      return undefined;
    }
    return e;
  }

  /** Expired maps go at the next put or get of theirs; the byte bound holds in between. */
  private sweep(): void {
    const now = this.now();
    for (const [token, e] of this.entries) {
      if (e.expiresAt > now) break;
      this.drop(token, e.png.length);
    }
  }

  private drop(token: string, bytes: number): void {
    this.entries.delete(token);
    this.heldBytes -= bytes;
  }

  clear(): void {
    this.entries.clear();
    this.heldBytes = 0;
  }
}
