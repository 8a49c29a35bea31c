// The worker pool with real ONNX Runtime sessions in real worker threads.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateModel } from '../../../src/dev/random-model.ts';
import { loadClipWeights } from '../../../src/clip/weights/clip-weights.ts';
import { ensureGraphs, GRAPH_FORMAT_VERSION, pruneStaleGraphs, type BuiltGraphs } from '../../../src/clip/onnx/graph-cache.ts';
import { WorkerPool } from '../../../src/clip/runtime/worker-pool.ts';
import { JobTimeoutError, QueueFullError, WorkerFailedError } from '../../../src/errors.ts';
import { sabotage } from '../../support/sabotage.ts';

let dir: string;
let graphs: BuiltGraphs;
const S = 64;
const options = { imageSize: S, denseLayers: [2, 4], denseStart: 3, denseAttention: 'vv' as const };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pool-'));
  const model = join(dir, 'tiny');
  generateModel({ arch: 'tiny', seed: 1, out: model });
  graphs = await ensureGraphs(model, join(dir, 'cache'), options, async () => (await loadClipWeights(model)).weights);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const pixels = (batch: number, value = 0.1) => new Float32Array(batch * 3 * S * S).fill(value);
const image = (pool: WorkerPool, batch = 1, value = 0.1) =>
  pool.infer('image', { pixel_values: { type: 'float32', data: pixels(batch, value), dims: [batch, 3, S, S] } });

function start(extra: Partial<Parameters<typeof WorkerPool.start>[0]> = {}) {
  return WorkerPool.start({
    models: { text: graphs.textPath, image: graphs.imagePath },
    size: 1,
    intraOpThreads: 1,
    maxQueue: 4,
    jobTimeoutMs: 0,
    ...extra,
  });
}

describe('graph cache', () => {
  it('reuses graphs built for the same checkpoint and options, rebuilds for other options', async () => {
    const model = join(dir, 'tiny');
    let loads = 0;
    const load = async () => {
      loads += 1;
      return (await loadClipWeights(model)).weights;
    };
    const again = await ensureGraphs(model, join(dir, 'cache'), options, load);
    expect(again.built).toBe(false);
    expect(again.imagePath).toBe(graphs.imagePath);
    expect(loads).toBe(0);
    const other = await ensureGraphs(model, join(dir, 'cache'), { ...options, denseAttention: 'qqkk' }, load);
    expect(other.built).toBe(true);
    expect(other.key).not.toBe(graphs.key);
    expect(loads).toBe(1);
  });

  it('prunes graphs of older format versions and dead builds, and keeps the rest', () => {
    const cache = join(dir, 'prune');
    const root = join(cache, 'graphs');
    const entry = (name: string, complete?: object) => {
      mkdirSync(join(root, name), { recursive: true });
      writeFileSync(join(root, name, 'image.onnx'), 'x');
      if (complete) writeFileSync(join(root, name, 'complete.json'), JSON.stringify(complete));
    };
    entry('old', { version: GRAPH_FORMAT_VERSION - 1 });
    entry('current', { version: GRAPH_FORMAT_VERSION });
    entry('not-ours');
    entry('abc.tmp-999999999'); // no such process
    entry(`abc.tmp-${process.pid}`); // a build in progress in this process
    expect(pruneStaleGraphs(cache).sort()).toEqual(['abc.tmp-999999999', 'old']);
    expect(readdirSync(root).sort()).toEqual([`abc.tmp-${process.pid}`, 'current', 'not-ours']);
    expect(pruneStaleGraphs(join(dir, 'no-cache-here'))).toEqual([]);
  });
});

describe('WorkerPool', () => {
  it('runs both towers and keeps images of a batch independent', async () => {
    const pool = await start();
    try {
      const one = await image(pool, 1, 0.3);
      expect(one.image_embeds.dims).toEqual([1, 32]);
      expect(one.dense_features.dims).toEqual([1, 2, 64, 32]);
      const batch = new Float32Array(2 * 3 * S * S);
      batch.fill(0.3, 0, 3 * S * S);
      batch.fill(-0.5, 3 * S * S);
      const two = await pool.infer('image', { pixel_values: { type: 'float32', data: batch, dims: [2, 3, S, S] } });
      const first = two.image_embeds.data.subarray(0, 32);
      for (let i = 0; i < 32; i++) expect(first[i]).toBeCloseTo(one.image_embeds.data[i], 5);
      const ids = new BigInt64Array(77);
      ids[0] = 1022n;
      ids[1] = 1023n;
      const text = await pool.infer('text', { input_ids: { type: 'int64', data: ids, dims: [1, 77] } });
      expect(text.text_embeds.dims).toEqual([1, 32]);
    } finally {
      await pool.close();
    }
  });

  it('refuses work beyond the queue bound at once', async () => {
    const pool = await start({ maxQueue: 2 });
    try {
      const jobs = Array.from({ length: 6 }, () => image(pool, 8).then(() => 'ok', (e: Error) => e));
      const results = await Promise.all(jobs);
      // One running + two queued are accepted; the rest are refused without waiting.
      expect(results.filter((r) => r === 'ok')).toHaveLength(3);
      expect(results.filter((r) => r instanceof QueueFullError)).toHaveLength(3);
    } finally {
      await pool.close();
    }
  });

  it('takes an urgent job (finishing admitted work) ahead of the queue, even when the queue is full', async () => {
    const pool = await start({ maxQueue: 1 });
    try {
      const order: string[] = [];
      const running = image(pool, 8).then(() => order.push('running'));
      const queued = image(pool, 1).then(() => order.push('queued'));
      await expect(image(pool, 1)).rejects.toBeInstanceOf(QueueFullError);
      const inputs = { pixel_values: { type: 'float32', data: pixels(1), dims: [1, 3, S, S] } };
      const urgent = pool.runTask('infer', { model: 'image', inputs }, [], undefined, { urgent: true }).then(() => order.push('urgent'));
      await Promise.all([running, queued, urgent]);
      expect(order).toEqual(['running', 'urgent', 'queued']);
    } finally {
      await pool.close();
    }
  });

  it('replaces a crashed worker: the running job fails, the next one succeeds', async () => {
    const pool = await start();
    try {
      await sabotage(pool, 'crash');
      const running = image(pool, 8);
      await expect(running).rejects.toBeInstanceOf(WorkerFailedError);
      const next = await image(pool);
      expect(next.image_embeds.dims).toEqual([1, 32]);
      expect(pool.restarts).toBe(1);
    } finally {
      await pool.close();
    }
  });

  it('replaces a hung worker after the job timeout', async () => {
    const pool = await start({ jobTimeoutMs: 1500 });
    try {
      await sabotage(pool, 'hang-next', 60_000);
      const stuck = image(pool);
      await expect(stuck).rejects.toBeInstanceOf(JobTimeoutError);
      const next = await image(pool);
      expect(next.image_embeds.dims).toEqual([1, 32]);
    } finally {
      await pool.close();
    }
  });

  it('drops a queued job whose caller gives up', async () => {
    const pool = await start({ maxQueue: 4 });
    try {
      const running = image(pool, 8);
      const abort = new AbortController();
      const queued = pool.infer('image', { pixel_values: { type: 'float32', data: pixels(1), dims: [1, 3, S, S] } }, abort.signal);
      expect(pool.queued).toBe(1);
      abort.abort();
      await expect(queued).rejects.toBeInstanceOf(JobTimeoutError);
      expect(pool.queued).toBe(0);
      await running;
    } finally {
      await pool.close();
    }
  });
});
