// A method is a folder and a registry line: a test-only method (test/support/methods/brightness)
// registered beside the built-in ones is served over HTTP like them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { BUILT_IN_METHODS, MethodRegistry } from '../../src/methods/registry.ts';
import { brightness } from '../support/methods/brightness/method.ts';
import { multipart, startTinyService, type TinyService } from '../support/tiny-service.ts';

let svc: TinyService;
let png: Buffer;

beforeAll(async () => {
  svc = await startTinyService({ winclip: '0' }, { registry: new MethodRegistry([...BUILT_IN_METHODS, brightness]) });
  // White, with a black 10×10 square: darkness 1 there, 0 elsewhere.
  png = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#ffffff' } })
    .composite([{ input: { create: { width: 10, height: 10, channels: 3, background: '#000000' } }, left: 20, top: 10 }])
    .png()
    .toBuffer();
});
afterAll(() => svc?.close());

const detect = (fields: Record<string, string>) =>
  svc.app.inject({
    method: 'POST',
    url: '/v1/detect',
    ...multipart([{ name: 'image', value: png, filename: 'a.png', type: 'image/png' }, ...Object.entries(fields).map(([name, value]) => ({ name, value }))]),
  });

describe('a registered test-only method', () => {
  it('is listed by /v1/models beside the built-in ones it serves', async () => {
    const [m] = (await svc.app.inject({ url: '/v1/models' })).json().models;
    expect(m.methods).toEqual(['dense-frequency', 'musc', 'darkness']);
  });

  it('is served over HTTP by name and alias, with its own map', async () => {
    for (const name of ['darkness', 'dark']) {
      const res = await detect({ category: 'plate', method: name, map: 'none' });
      expect(res.statusCode).toBe(200);
      const b = res.json();
      expect(b.method).toBe('darkness');
      expect(b.score).toBe(1);
      expect(b.isAnomalous).toBe(true);
      expect(b.regions).toHaveLength(1);
      expect(b.regions[0].bbox).toEqual({ x: 20, y: 10, w: 10, h: 10 });
    }
  });

  it('leaves the built-in methods as they were, and a method the registry lacks is refused', async () => {
    expect((await detect({ category: 'plate', map: 'none' })).json().method).toBe('dense-frequency');
    const off = await detect({ category: 'plate', method: 'winclip' });
    expect(off.statusCode).toBe(400);
    expect(off.json().message).toMatch(/WINCLIP=0/);
    const unknown = await detect({ category: 'plate', method: 'patchcore' });
    expect(unknown.statusCode).toBe(400);
    expect(unknown.json().message).toMatch(/method/);
  });

  it('names are unique across methods and aliases', () => {
    expect(() => new MethodRegistry([...BUILT_IN_METHODS, { ...brightness, name: 'ours', aliases: [] }])).toThrow(/twice/);
  });
});
