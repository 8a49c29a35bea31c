// API keys: from API_KEYS and API_KEYS_FILE, matched in constant time. Keys are held only as
// SHA-256 digests: equal-length digests make timingSafeEqual usable whatever the key lengths,
// and every stored key is compared on every check, so timing says nothing about which one
// (or which part of one) was close.
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { SettingsError } from '../settings.ts';

const digest = (key: string) => createHash('sha256').update(key, 'utf8').digest();

export class ApiKeys {
  private readonly digests: Buffer[];

  constructor(keys: Iterable<string>) {
    this.digests = [...new Set(keys)].map(digest);
  }

  /** No keys configured: the API is open. */
  get enabled(): boolean {
    return this.digests.length > 0;
  }

  /**
   * The key's id (a digest prefix: safe to log and to rate-limit by), or undefined when the
   * presented key is missing or matches none.
   */
  match(presented: string | undefined): string | undefined {
    const d = digest(presented ?? '');
    let found: Buffer | undefined;
    for (const known of this.digests) {
      if (timingSafeEqual(d, known) && !found) found = known;
    }
    return presented && found ? found.subarray(0, 8).toString('hex') : undefined;
  }
}

/** API_KEYS plus the lines of API_KEYS_FILE (blank lines and # comments skipped). */
export function readApiKeys(settings: { apiKeys?: string[]; apiKeysFile?: string }): ApiKeys {
  const keys = [...(settings.apiKeys ?? [])];
  if (settings.apiKeysFile) {
    let text: string;
    try {
      text = readFileSync(settings.apiKeysFile, 'utf8');
    } catch (err) {
      throw new SettingsError(`API_KEYS_FILE=${JSON.stringify(settings.apiKeysFile)}: cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    const lines = text.split(/\r?\n/).map((l) => l.trim());
    lines.forEach((line, i) => {
      if (!line || line.startsWith('#')) return;
      if (!/^[\w.~+/=-]{16,256}$/.test(line)) {
        throw new SettingsError(`API_KEYS_FILE=${JSON.stringify(settings.apiKeysFile)}: line ${i + 1} is not a key (16-256 characters of letters, digits and . _ ~ + / = -)`);
      }
      keys.push(line);
    });
    if (!keys.length) throw new SettingsError(`API_KEYS_FILE=${JSON.stringify(settings.apiKeysFile)}: holds no keys`);
  }
  return new ApiKeys(keys);
}
