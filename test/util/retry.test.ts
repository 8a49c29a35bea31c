import { describe, expect, it } from 'vitest';
import { backoffDelay, retry, sleep } from '../../src/util/retry.ts';
import { timeoutSignal } from '../../src/util/timeout.ts';

describe('backoffDelay', () => {
  it('doubles from the base, up to the cap; equal jitter keeps half of it fixed', () => {
    expect([1, 2, 3, 4].map((r) => backoffDelay(r, { baseDelayMs: 10 }))).toEqual([10, 20, 40, 80]);
    expect(backoffDelay(10, { baseDelayMs: 10, maxDelayMs: 100 })).toBe(100);
    expect(backoffDelay(3, { baseDelayMs: 10, jitter: 'equal', random: () => 0 })).toBe(20);
    expect(backoffDelay(3, { baseDelayMs: 10, jitter: 'equal', random: () => 0.999999 })).toBeCloseTo(40, 3);
  });
});

describe('retry', () => {
  it('retries until success, logging each retry with its delay', async () => {
    const seen: Array<[number, number]> = [];
    let calls = 0;
    const value = await retry(
      async (attempt) => {
        calls++;
        if (attempt < 3) throw new Error(`fail ${attempt}`);
        return 'ok';
      },
      { attempts: 5, baseDelayMs: 1, onRetry: ({ attempt, delayMs }) => seen.push([attempt, delayMs]) },
    );
    expect(value).toBe('ok');
    expect(calls).toBe(3);
    expect(seen).toEqual([[1, 1], [2, 2]]);
  });

  it('throws the last failure as thrown once the attempts are used up, at once when not retryable', async () => {
    let calls = 0;
    const failing = () => retry(async (a) => { calls++; throw new Error(`fail ${a}`); }, { attempts: 3, baseDelayMs: 1 });
    await expect(failing()).rejects.toThrow('fail 3');
    expect(calls).toBe(3);
    calls = 0;
    const fatal = new TypeError('no');
    await expect(retry(async () => { calls++; throw fatal; }, { attempts: 3, baseDelayMs: 1, retryable: (e) => !(e instanceof TypeError) })).rejects.toBe(fatal);
    expect(calls).toBe(1);
    await expect(retry(async () => 1, { attempts: 0, baseDelayMs: 1 })).rejects.toThrow(RangeError);
  });

  it('an abort ends the backoff wait at once and starts no further attempt', async () => {
    const stop = new AbortController();
    let calls = 0;
    const started = performance.now();
    const run = retry(async () => { calls++; throw new Error('down'); }, { attempts: 5, baseDelayMs: 10_000, signal: stop.signal });
    setTimeout(() => stop.abort(), 20);
    await expect(run).rejects.toThrow('down');
    expect(calls).toBe(1);
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it('sleep resolves early on abort', async () => {
    const stop = new AbortController();
    stop.abort();
    const t = performance.now();
    await sleep(10_000, stop.signal);
    expect(performance.now() - t).toBeLessThan(100);
  });
});

describe('timeoutSignal', () => {
  it('aborts after the time, or with its parent, and clear() stops the timer', async () => {
    const t = timeoutSignal(20);
    await new Promise((r) => setTimeout(r, 60));
    expect(t.signal.aborted).toBe(true);
    expect((t.signal.reason as DOMException).name).toBe('TimeoutError');

    const parent = new AbortController();
    const child = timeoutSignal(10_000, parent.signal);
    parent.abort(new Error('shutdown'));
    expect(child.signal.aborted).toBe(true);
    expect((child.signal.reason as Error).message).toBe('shutdown');
    child.clear();

    const cleared = timeoutSignal(20);
    cleared.clear();
    await new Promise((r) => setTimeout(r, 60));
    expect(cleared.signal.aborted).toBe(false);
  });
});
