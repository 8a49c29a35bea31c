// QUANTIZE=int8 end to end on the tiny model: the service builds and serves the int8 graphs
// (the image, text and WinCLIP window graphs), and /v1/models and every response say so.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { multipart, startTinyService, type TinyService } from '../support/tiny-service.ts';
import { machineWeightFormat } from '../../src/clip/onnx/int8-kernel.ts';

let int8: TinyService;
let png: Buffer;

beforeAll(async () => {
  int8 = await startTinyService({ quantize: 'int8' });
  png = await sharp({ create: { width: 96, height: 64, channels: 3, background: '#6d6d6d' } })
    .composite([{ input: { create: { width: 10, height: 10, channels: 3, background: '#ff0000' } }, left: 40, top: 20 }])
    .png()
    .toBuffer();
});
afterAll(() => int8?.close());

const detect = (svc: TinyService, method: string) =>
  svc.app.inject({
    method: 'POST',
    url: '/v1/detect',
    ...multipart([
      { name: 'image', value: png, filename: 'part.png', type: 'image/png' },
      { name: 'category', value: 'metal plate' },
      { name: 'method', value: method },
      { name: 'map', value: 'none' },
    ]),
  });

describe('QUANTIZE=int8', () => {
  it('/v1/models and detect responses name the precision', async () => {
    const models = (await int8.app.inject({ method: 'GET', url: '/v1/models' })).json();
    expect(models.models[0].precision).toBe('int8');
    for (const method of ['dense-frequency', 'winclip']) {
      const res = await detect(int8, method);
      expect(res.statusCode).toBe(200);
      expect(res.json().model.precision).toBe('int8');
      expect(res.json().score).toBeGreaterThanOrEqual(0);
    }
  });

  it('builds int8 graphs for the towers and the window graph (not for MuSc, which stays fp32)', () => {
    const root = join(int8.settings.cacheDir, 'graphs');
    const records = readdirSync(root).map((k) => JSON.parse(readFileSync(join(root, k, 'complete.json'), 'utf8')));
    const towers = records.find((r) => !r.graph);
    expect(towers.options.precision).toBe('int8');
    // QUANTIZE_WEIGHTS=auto: s8 on a VNNI CPU, u8 (the unmarked default) elsewhere.
    const weights = machineWeightFormat();
    expect(towers.options.int8Weights).toBe(weights === 'u8' ? undefined : weights);
    expect(records.find((r) => r.graph === 'winclip')?.build).toEqual({ precision: 'int8', ...(weights === 'u8' ? {} : { int8Weights: weights }) });
    expect(records.find((r) => r.graph === 'musc')?.build).toBeUndefined();
  });

  it('the fp32 default says fp32', async () => {
    const fp32 = await (await import('../support/tiny-service.ts')).startTinyService();
    try {
      expect((await fp32.app.inject({ method: 'GET', url: '/v1/models' })).json().models[0].precision).toBe('fp32');
      expect((await detect(fp32, 'dense-frequency')).json().model.precision).toBe('fp32');
    } finally {
      await fp32.close();
    }
  });
});
