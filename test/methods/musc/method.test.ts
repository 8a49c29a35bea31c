// method=musc over HTTP on the tiny model: batches only, at least five images, the anomalous
// image scores highest, and the answers are the same bits whatever the run or upload order.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { multipart, startTinyService, type TinyService } from '../../support/tiny-service.ts';
import { texturePng } from '../../support/batch-images.ts';

let svc: TinyService;
let normals: Buffer[];
let anomalous: Buffer;

beforeAll(async () => {
  svc = await startTinyService({ winclip: '0' });
  normals = await Promise.all([1, 2, 3, 4, 5].map((seed) => texturePng(seed)));
  anomalous = await texturePng(6, true);
});
afterAll(() => svc?.close());

type Part = Parameters<typeof multipart>[0][number];
const file = (value: Buffer, filename: string): Part => ({ name: 'image', value, filename, type: 'image/png' });
const fields = (f: Record<string, string>): Part[] => Object.entries(f).map(([name, value]) => ({ name, value }));
const batch = (files: Array<[string, Buffer]>, f: Record<string, string> = {}) =>
  svc.app.inject({ method: 'POST', url: '/v1/detect/batch', ...multipart([...files.map(([n, b]) => file(b, n)), ...fields({ category: 'plate', method: 'musc', map: 'grid', ...f })]) });

/** Per filename: score and grid map. */
async function scoresByName(files: Array<[string, Buffer]>) {
  const res = await batch(files);
  expect(res.statusCode).toBe(200);
  const b = res.json();
  expect(b.method).toBe('musc');
  expect(b.results.map((r: any) => r.filename)).toEqual(files.map(([n]) => n));
  return new Map<string, { score: number; map: number[] }>(b.results.map((r: any) => [r.filename, { score: r.result.score, map: r.result.map.values }]));
}

describe('method=musc', () => {
  it('needs at least 5 images: 4 get 422 naming the minimum', async () => {
    const res = await batch(normals.slice(0, 4).map((b, i) => [`n${i}.png`, b]));
    expect(res.statusCode).toBe(422);
    expect(res.json().message).toMatch(/at least 5 images/);
  });

  it('scores only batches, and refuses prompts and branches', async () => {
    const single = await svc.app.inject({ method: 'POST', url: '/v1/detect', ...multipart([file(normals[0], 'a.png'), ...fields({ category: 'plate', method: 'musc' })]) });
    expect(single.statusCode).toBe(400);
    expect(single.json().message).toMatch(/\/v1\/detect\/batch/);
    const files: Array<[string, Buffer]> = normals.map((b, i) => [`n${i}.png`, b]);
    const custom = await batch(files, { prompts: 'custom', normal: 'a good plate', abnormal: 'a broken plate' });
    expect(custom.statusCode).toBe(400);
    expect(custom.json().message).toMatch(/MuSc uses no prompts/);
    expect((await batch(files, { branches: 'true' })).statusCode).toBe(400);
  });

  it('gives the image with a pasted patch the highest score, the same bits across runs and upload orders', async () => {
    const files: Array<[string, Buffer]> = [...normals.map((b, i): [string, Buffer] => [`n${i}.png`, b]), ['patch.png', anomalous]];
    const first = await scoresByName(files);
    const top = [...first.entries()].sort((a, b) => b[1].score - a[1].score)[0][0];
    expect(top).toBe('patch.png');
    for (const v of first.values()) {
      expect(v.score).toBeGreaterThanOrEqual(0);
      expect(v.score).toBeLessThanOrEqual(1);
      expect(v.map.every((x) => x >= 0 && x <= 1)).toBe(true);
    }
    expect(await scoresByName(files)).toEqual(first);
    const permuted = [files[5], files[2], files[0], files[4], files[1], files[3]];
    expect(await scoresByName(permuted)).toEqual(first);
  });

  it("joins a stored category's references to the pool as known normals (not returned)", async () => {
    const put = await svc.app.inject({ method: 'PUT', url: '/v1/categories/striped', payload: { name: 'striped plate' } });
    expect(put.statusCode).toBeLessThan(300);
    const refs = await svc.app.inject({
      method: 'POST',
      url: '/v1/categories/striped/references',
      ...multipart([file(normals[3], 'r1.png'), file(normals[4], 'r2.png')]),
    });
    expect(refs.statusCode).toBe(201);
    const three: Array<[string, Buffer]> = [['a.png', normals[0]], ['b.png', normals[1]], ['patch.png', anomalous]];
    const res = await batch(three, { category: 'striped' });
    expect(res.statusCode).toBe(200);
    const b = res.json();
    expect(b.category).toBe('striped plate');
    expect(b.count).toBe(3);
    expect(b.results).toHaveLength(3);
    const scores = b.results.map((r: any) => r.result.score);
    expect(Math.max(...scores)).toBe(scores[2]);
    expect(b.results[2].result.categoryResource).toMatchObject({ id: 'striped', references: 2 });
    // A ticketing bot posting the summary learns that the verdict ranks this batch.
    for (const r of b.results) expect(r.result.summary).toMatch(/^striped plate: (anomalous|looks normal) \(score [\d.]+ (≥|<) threshold 0\.50, default, not calibrated for this category, relative to this batch\)/);
  });
});
