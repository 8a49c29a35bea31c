// src/settings.ts against its documentation: the README's settings table names every setting the
// service reads, so the documentation cannot fall behind the code unnoticed.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SETTINGS } from '../src/settings.ts';

describe('README settings table', () => {
  it('has a row for every setting', () => {
    const readme = readFileSync(join(import.meta.dirname, '..', 'README.md'), 'utf8');
    const rows = new Set([...readme.matchAll(/^\| `([A-Z][A-Z0-9_]*)` \|/gm)].map((m) => m[1]));
    const missing = Object.values(SETTINGS)
      .map((s) => s.env)
      .filter((env) => !rows.has(env));
    expect(missing).toEqual([]);
  });
});
