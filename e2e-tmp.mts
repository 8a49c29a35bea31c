import sharp from 'sharp';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createClipDetector } from './src/detection/clip-detector.ts';
import { buildApp } from './src/app.ts';
import { loadSettings } from './src/settings.ts';
const scratch = mkdtempSync(join(tmpdir(), 'e2e-'));
const settings = loadSettings({}, { model: '/work/models-cache/vit-b-16', cacheDir: resolve('.cache/bench'), dataDir: join(scratch, 'data'), promptsDir: join(scratch, 'prompts'), offline: '1', workers: '1', intraOpThreads: '2', winclip: '0', logLevel: 'silent' } as never);
const detector = await createClipDetector(settings);
const app = await buildApp({ detector, defaultThreshold: 0.5, maxBodyBytes: 64 << 20, logLevel: 'silent', mapUrls: { ttlMs: 60_000, maxBytes: 64 << 20 } });
const w = 1000, h = 1000; const rgb = Buffer.alloc(w * h * 3); let s = 7;
for (let i = 0; i < w * h; i++) { s = (Math.imul(s, 1103515245) + 12345) >>> 0; const v = 100 + ((((i % w) >> 3) + ((i / w) >> 3)) % 6) * 8 + (s >>> 28); rgb[3 * i] = v; rgb[3 * i + 1] = v + 4; rgb[3 * i + 2] = v - 4; }
const jpeg = await sharp(rgb, { raw: { width: w, height: h, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
for (const map of (process.argv[2] ?? 'none,png').split(',')) {
  const rows: any[] = [];
  for (let i = 0; i < 8; i++) {
    const t = performance.now();
    const res = await app.inject({ method: 'POST', url: `/v1/detect?category=metal%20plate&map=${map}`, headers: { 'content-type': 'image/jpeg' }, payload: jpeg });
    const wall = performance.now() - t;
    const body = JSON.parse(res.body);
    rows.push({ wall: +wall.toFixed(1), ...body.timingsMs, bytes: res.body.length });
  }
  console.log(map, rows.slice(2));
}
await app.close(); await detector.close();
