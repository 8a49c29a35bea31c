// Failed cache writes (issue 13, item 15): a full disk is injected where the bytes are written
// (node:fs writeSync and the promise API's FileHandle.writeFile throw an ENOSPC-coded error, as
// the kernel's would). The temporary file must be gone, the error must name the file, and the
// service's log line must be JSON with the path and 'no space left on device writing <path>'.
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';

const disk = vi.hoisted(() => ({ full: false }));
const enospc = () => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' });

vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  const writeSync = ((...args: Parameters<typeof fs.writeSync>) => {
    if (disk.full) throw enospc();
    return (fs.writeSync as (...a: unknown[]) => number)(...args);
  }) as typeof fs.writeSync;
  return { ...fs, default: { ...fs, writeSync }, writeSync };
});
vi.mock('node:fs/promises', async (importOriginal) => {
  const fsp = await importOriginal<typeof import('node:fs/promises')>();
  const open = (async (...args: Parameters<typeof fsp.open>) => {
    const handle = await fsp.open(...args);
    const writeFile = handle.writeFile.bind(handle);
    handle.writeFile = (async (...a: Parameters<typeof writeFile>) => {
      if (disk.full) throw enospc();
      return writeFile(...a);
    }) as typeof handle.writeFile;
    return handle;
  }) as typeof fsp.open;
  return { ...fsp, default: { ...fsp, open }, open };
});

const { FileWriteError, writeFileAtomic, writeFileAtomicSync, AtomicFileSync } = await import('../../src/util/atomic-write.ts');
const { EmbeddingStore } = await import('../../src/prompts/embedding-store.ts');
const { loggerOptions, messageLog } = await import('../../src/observability/logger.ts');
const { LogCapture } = await import('../support/log-capture.ts');
const { ensureGraphs } = await import('../../src/clip/onnx/graph-cache.ts');
const { generateModel } = await import('../../src/dev/random-model.ts');
const { loadClipWeights } = await import('../../src/clip/weights/clip-weights.ts');

const dir = mkdtempSync(join(tmpdir(), 'write-failures-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => {
  disk.full = false;
});
const leftovers = (folder: string) => readdirSync(folder, { recursive: true }).map(String).filter((f) => f.includes('.tmp'));

describe('atomic writes on a full disk', () => {
  it('remove the temporary file and name the target, sync and async, streamed or whole', async () => {
    const target = join(dir, 'a.bin');
    writeFileSync(target, 'old');
    disk.full = true;
    expect(() => writeFileAtomicSync(target, 'new')).toThrow(`no space left on device writing ${target}`);
    await expect(writeFileAtomic(target, 'new')).rejects.toThrow(`no space left on device writing ${target}`);
    const streamed = new AtomicFileSync(join(dir, 's.bin'));
    let error: unknown;
    try {
      streamed.write(Buffer.from('abc'));
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(FileWriteError);
    expect(error).toMatchObject({ code: 'ENOSPC', path: join(dir, 's.bin') });
    expect(readFileSync(target, 'utf8')).toBe('old');
    expect(leftovers(dir)).toEqual([]);
  });
});

describe('the text embedding store on a full disk', () => {
  it('keeps the embeddings in memory, leaves no temporary file and logs one JSON warning naming the file', async () => {
    const logs = new LogCapture();
    const app = Fastify({ logger: loggerOptions('info', logs) });
    const storeDir = join(dir, 'text');
    const store = new EmbeddingStore(storeDir, 100, messageLog(app.log));
    disk.full = true;
    await store.write('metal plate', { normal: new Float32Array([1, 2]), abnormal: new Float32Array([3, 4]) } as never);
    expect(leftovers(storeDir)).toEqual([]);
    expect(readdirSync(storeDir)).toEqual([]);
    // Every line is JSON (LogCapture parses them); the warning carries the path and the code.
    const warnings = logs.lines.filter((l) => l.level === 40);
    expect(warnings).toHaveLength(1);
    const line = warnings[0];
    expect(line.path).toMatch(new RegExp(`^${storeDir}/.+\\.bin$`));
    expect(line.code).toBe('ENOSPC');
    expect(line.msg).toBe(`text embeddings not stored: no space left on device writing ${line.path}`);
    await app.close();
  });
});

describe('the graph cache on a full disk', () => {
  it('removes its temporary folder and says which file could not be written', async () => {
    const model = join(dir, 'tiny');
    generateModel({ arch: 'tiny', seed: 1, out: model });
    const cacheDir = join(dir, 'cache');
    const weights = (await loadClipWeights(model)).weights;
    disk.full = true;
    await expect(ensureGraphs(model, cacheDir, { imageSize: 64, denseLayers: [2, 4], denseStart: 3, denseAttention: 'vv' }, async () => weights)).rejects.toThrow(
      /^no space left on device writing .*graphs\/.+\.tmp-\d+\/.+\.onnx/,
    );
    const graphs = join(cacheDir, 'graphs');
    expect(existsSync(graphs) ? readdirSync(graphs) : []).toEqual([]);
  });
});
