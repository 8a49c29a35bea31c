// The one worker layer: bootstrap, setup, calls, handler errors, dead workers.
import { describe, expect, it } from 'vitest';
import { WorkerCallError, WorkerChannel, WorkerExitError, WorkerStartError } from '../../src/util/worker/channel.ts';

const ECHO = new URL('../support/echo-worker.ts', import.meta.url);

describe('WorkerChannel', () => {
  it('runs setup with the data, then answers calls by name, moving transferred buffers', async () => {
    const w = new WorkerChannel(ECHO, { greeting: 'hello' });
    try {
      // Calls may go out before ready: they wait in the worker's port.
      const early = w.call<string>('greet', 'early');
      await w.ready;
      expect(await early).toBe('hello, early');
      const input = Float64Array.of(1, 2, 3);
      const doubled = await w.call<Float64Array>('double', input, [input.buffer as ArrayBuffer]);
      expect(Array.from(doubled)).toEqual([2, 4, 6]);
      expect(input.byteLength).toBe(0); // moved, not copied
    } finally {
      await w.terminate();
    }
  });

  it('rejects a call whose handler throws with WorkerCallError, and the worker goes on', async () => {
    const w = new WorkerChannel(ECHO, { greeting: 'hi' });
    try {
      const err = await w.call('fail', null).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WorkerCallError);
      expect((err as WorkerCallError).message).toBe('handler failed');
      expect((err as WorkerCallError).remoteStack).toContain('echo-worker.ts');
      await expect(w.call('nope', null)).rejects.toThrow(/unknown worker task nope/);
      expect(await w.call('greet', 'again')).toBe('hi, again');
    } finally {
      await w.terminate();
    }
  });

  it('reports a worker that dies once, and fails its open and later calls', async () => {
    const w = new WorkerChannel(ECHO, { greeting: 'hi' });
    await w.ready;
    const failures: Error[] = [];
    w.onFailure((e) => failures.push(e));
    await expect(w.call('exit', null)).rejects.toBeInstanceOf(WorkerExitError);
    expect(failures).toHaveLength(1);
    expect((failures[0] as WorkerExitError).exitCode).toBe(7);
    await expect(w.call('greet', 'x')).rejects.toBeInstanceOf(WorkerExitError);
    await w.terminate();
  });

  it('rejects ready with WorkerStartError when setup throws', async () => {
    const w = new WorkerChannel(ECHO, { greeting: 'hi', failSetup: true });
    const err = await w.ready.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkerStartError);
    expect(err).toMatchObject({ kind: 'init-error', message: 'setup refused' });
    await w.terminate();
  });

  it('terminate() stops the thread without reporting a failure', async () => {
    const w = new WorkerChannel(ECHO, { greeting: 'hi' });
    await w.ready;
    let failed = false;
    w.onFailure(() => (failed = true));
    await w.terminate();
    await expect(w.call('greet', 'x')).rejects.toThrow(/stopped/);
    expect(failed).toBe(false);
  });
});
