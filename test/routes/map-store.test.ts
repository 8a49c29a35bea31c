// The map URL store: bounded in time and bytes, oldest dropped first, tokens unguessable.
import { describe, expect, it } from 'vitest';
import { MapStore } from '../../src/routes/map-store.ts';

describe('MapStore', () => {
  it('serves a map until its TTL, then forgets it', () => {
    let now = 1000;
    const store = new MapStore(500, 1 << 20, () => now);
    const { token, expiresAt } = store.put(Buffer.from('png'))!;
    expect(token).toMatch(/^[\w-]{43}$/);
    expect(expiresAt).toBe(1500);
    now = 1499;
    expect(store.get(token)?.png.toString()).toBe('png');
    now = 1500;
    expect(store.get(token)).toBeUndefined();
    expect(store.bytes).toBe(0);
  });

  it('drops the oldest maps to stay within its bytes, and refuses one larger than the whole bound', () => {
    const store = new MapStore(60_000, 100);
    const a = store.put(Buffer.alloc(40))!;
    const b = store.put(Buffer.alloc(40))!;
    const c = store.put(Buffer.alloc(40))!;
    expect(store.get(a.token)).toBeUndefined();
    expect(store.get(b.token)).toBeDefined();
    expect(store.get(c.token)).toBeDefined();
    expect(store.bytes).toBe(80);
    expect(store.put(Buffer.alloc(101))).toBeUndefined();
    expect(store.bytes).toBe(80);
    expect(new Set([a.token, b.token, c.token]).size).toBe(3);
  });

  it('sweeps expired maps when a new one comes', () => {
    let now = 0;
    const store = new MapStore(10, 1000, () => now);
    store.put(Buffer.alloc(100));
    store.put(Buffer.alloc(100));
    now = 20;
    store.put(Buffer.alloc(10));
    expect([store.size, store.bytes]).toEqual([1, 10]);
  });
});
