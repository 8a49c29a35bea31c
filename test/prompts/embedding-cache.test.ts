import { describe, expect, it } from 'vitest';
import { EmbeddingCache, promptCacheKey, type ClassEmbeddings } from '../../src/prompts/embedding-cache.ts';

const value = (v: number): ClassEmbeddings => ({ normal: Float32Array.of(v), abnormal: Float32Array.of(-v) });

describe('EmbeddingCache', () => {
  it('evicts the least recently used entry beyond capacity', () => {
    const cache = new EmbeddingCache({ capacity: 2 });
    cache.set('a', value(1));
    cache.set('b', value(2));
    expect(cache.get('a')?.normal[0]).toBe(1); // a is now the most recent
    cache.set('c', value(3));
    expect(cache.keys()).toEqual(['a', 'c']);
    expect(cache.has('b')).toBe(false);
    expect(cache.size).toBe(2);
    expect(cache.stats()).toMatchObject({ hits: 1, evictions: 1, size: 2, capacity: 2 });
  });

  it('uses a default capacity and rejects a bad one', () => {
    expect(new EmbeddingCache().capacity).toBe(256); // PROMPT_CACHE_SIZE's default
    expect(() => new EmbeddingCache({ capacity: -1 })).toThrow(RangeError);
    expect(() => new EmbeddingCache({ capacity: 1.5 })).toThrow(RangeError);
    const none = new EmbeddingCache({ capacity: 0 });
    none.set('a', value(1));
    expect(none.size).toBe(0);
  });

  it('shares one in-flight computation between concurrent requests', async () => {
    const cache = new EmbeddingCache({ capacity: 4 });
    let calls = 0;
    let release: (v: ClassEmbeddings) => void = () => {};
    const compute = () => {
      calls++;
      return new Promise<ClassEmbeddings>((resolve) => {
        release = resolve;
      });
    };
    const first = cache.getOrCompute('k', compute);
    const second = cache.getOrCompute('k', compute);
    expect(cache.stats().inFlight).toBe(1);
    release(value(7));
    const [a, b] = await Promise.all([first, second]);
    expect(calls).toBe(1);
    expect(a).toBe(b);
    const third = await cache.getOrCompute('k', compute);
    expect(third).toBe(a);
    expect(calls).toBe(1);
    expect(cache.stats()).toMatchObject({ hits: 1, misses: 1, joined: 1, inFlight: 0, size: 1 });
  });

  it('does not cache a rejected computation', async () => {
    const cache = new EmbeddingCache({ capacity: 4 });
    let calls = 0;
    const failing = () => {
      calls++;
      return Promise.reject(new Error('text tower down'));
    };
    const p1 = cache.getOrCompute('k', failing);
    const p2 = cache.getOrCompute('k', failing);
    await expect(p1).rejects.toThrow('text tower down');
    await expect(p2).rejects.toThrow('text tower down');
    expect(calls).toBe(1);
    expect(cache.has('k')).toBe(false);
    expect(cache.stats().inFlight).toBe(0);
    const ok = await cache.getOrCompute('k', async () => value(3));
    expect(ok.normal[0]).toBe(3);
    expect(cache.has('k')).toBe(true);
  });

  it('treats a synchronous throw as a rejection', async () => {
    const cache = new EmbeddingCache();
    await expect(
      cache.getOrCompute('k', () => {
        throw new Error('sync');
      }),
    ).rejects.toThrow('sync');
    expect(cache.stats().inFlight).toBe(0);
  });
});

describe('promptCacheKey', () => {
  it('is stable and distinguishes configurations', () => {
    const a = promptCacheKey({ category: 'bottle', mode: 'templated' });
    expect(promptCacheKey({ mode: 'templated', category: 'bottle' })).toBe(a);
    expect(promptCacheKey({ category: 'bottle', mode: 'custom', normal: ['x'], abnormal: ['y'] })).not.toBe(a);
    expect(promptCacheKey({ category: 'bottle', mode: 'templated', model: 'm2' })).not.toBe(a);
  });
});
