// Reference memories of recently used categories, bounded by bytes (a 64-reference memory of
// ViT-B/16 is ~77 MB in float32). Concurrent requests for one key share one build.

interface Entry {
  value: unknown;
  bytes: number;
}

export class MemoryCache {
  private readonly entries = new Map<string, Entry>();
  private readonly pending = new Map<string, Promise<Entry>>();
  private used = 0;

  constructor(readonly maxBytes: number) {}

  get bytes(): number {
    return this.used;
  }

  async getOrBuild(key: string, build: () => Promise<Entry>): Promise<unknown> {
    const hit = this.entries.get(key);
    if (hit) {
      this.entries.delete(key);
      this.entries.set(key, hit);
      return hit.value;
    }
    let running = this.pending.get(key);
    if (!running) {
      running = build().finally(() => this.pending.delete(key));
      this.pending.set(key, running);
      running.then((e) => this.put(key, e), () => {});
    }
    return (await running).value;
  }

  private put(key: string, entry: Entry): void {
    // Older versions of the same category are dead weight: their key differs only after the id.
    const id = key.split('\u0000')[0];
    for (const [k, e] of this.entries) {
      if (k.split('\u0000')[0] === id) {
        this.entries.delete(k);
        this.used -= e.bytes;
      }
    }
    if (entry.bytes > this.maxBytes) return;
    this.entries.set(key, entry);
    this.used += entry.bytes;
    for (const [k, e] of this.entries) {
      if (this.used <= this.maxBytes) break;
      this.entries.delete(k);
      this.used -= e.bytes;
    }
  }
}
