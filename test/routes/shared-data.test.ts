// Every real image in ../shared/data through HTTP: no 5xx, and maps the size of the image.
// Skips when ../shared/data is absent. Random-weight scores are not checked: only plumbing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { multipart, startTinyService, type TinyService } from '../support/tiny-service.ts';

const DATA = resolve(import.meta.dirname, '../../../shared/data');

function testImages(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) {
        if (name !== 'ground_truth') walk(p);
      } else if (/\.(png|jpe?g)$/i.test(name) && p.includes(`${'/'}test${'/'}`)) out.push(p);
    }
  };
  walk(root);
  return out;
}

describe.skipIf(!existsSync(DATA))('every image of ../shared/data through POST /v1/detect', () => {
  let svc: TinyService;
  beforeAll(async () => {
    svc = await startTinyService();
  });
  afterAll(() => svc?.close());

  it('answers 200 with a map of the image size for each, never a 5xx', async () => {
    const files = testImages(DATA);
    expect(files.length).toBeGreaterThan(100);
    const failures: string[] = [];
    for (const file of files) {
      const bytes = readFileSync(file);
      const category = file.split('/').at(-4)!.replace(/_/g, ' ');
      const body = multipart([
        { name: 'image', value: bytes, filename: 'x', type: 'application/octet-stream' },
        { name: 'category', value: category },
        { name: 'map', value: 'png' },
      ]);
      const res = await svc.app.inject({ method: 'POST', url: '/v1/detect', ...body });
      if (res.statusCode !== 200) {
        failures.push(`${file}: ${res.statusCode} ${res.body.slice(0, 200)}`);
        continue;
      }
      const b = res.json();
      const meta = await sharp(bytes).rotate().metadata();
      const [w, h] = (meta.autoOrient ? [meta.autoOrient.width, meta.autoOrient.height] : [meta.width, meta.height]);
      if (b.map.width !== w || b.map.height !== h || b.image.width !== w || b.image.height !== h) {
        failures.push(`${file}: map ${b.map.width}×${b.map.height}, image ${w}×${h}`);
      }
    }
    expect(failures).toEqual([]);
  }, 600_000);
});
