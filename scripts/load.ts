// `npm run load`: starts the demo server (tiny random model) as a child on 127.0.0.1, fires
// multipart detections at it with autocannon, bounded in time and in requests, and prints
// requests/s, p50/p99 latency, error counts and the server's RSS before and after.
//
//   npm run load -- [--seconds 20] [--requests 5000] [--connections 8] [--map png] [--size 256]
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import sharp from 'sharp';

interface Histogram {
  average: number;
  p50: number;
  p99: number;
  max: number;
  total: number;
}
interface AutocannonResult {
  requests: Histogram;
  latency: Histogram;
  duration: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  statusCodeStats: Record<string, { count: number }>;
}
type Autocannon = ((opts: Record<string, unknown>) => Promise<AutocannonResult> & { stop(): void }) & {};
// autocannon ships no type declarations; this is the part of its API used here.
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '20' },
    requests: { type: 'string', default: '5000' },
    connections: { type: 'string', default: '8' },
    map: { type: 'string', default: 'png' },
    size: { type: 'string', default: '256' },
  },
});
const seconds = Math.min(300, Number(args.seconds));
const maxRequests = Math.min(1_000_000, Number(args.requests));
const connections = Math.min(256, Number(args.connections));
const side = Number(args.size);

function startServer(): Promise<{ base: string; stop(): Promise<number | null> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/demo.ts'], {
    // Loopback only, an ephemeral port; logs at info as in production (read here, then discarded).
    env: { ...process.env, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
      const m = /"msg":"Server listening at (http:\/\/127\.0\.0\.1:\d+)"/.exec(out);
      if (m) {
        child.stdout.removeAllListeners('data');
        child.stdout.resume();
        resolve({
          base: m[1],
          stop: () => {
            child.kill('SIGTERM');
            return exited;
          },
        });
      }
    });
    void exited.then((code) => reject(new Error(`the demo server exited (code ${code}) before listening`)));
  });
}

async function waitReady(base: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    const res = await fetch(`${base}/readyz`).catch(() => undefined);
    if (res?.status === 200) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the demo server did not become ready within 60 s');
}

async function serverRssMb(base: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('process_resident_memory_bytes '));
  return line ? Number(line.split(' ')[1]) / 2 ** 20 : NaN;
}

function multipartBody(image: Buffer, fields: Record<string, string>): { body: Buffer; contentType: string } {
  const boundary = `----load${Date.now().toString(16)}`;
  const parts: Buffer[] = [Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="part.png"\r\nContent-Type: image/png\r\n\r\n`), image, Buffer.from('\r\n')];
  for (const [name, value] of Object.entries(fields)) parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`));
  parts.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(parts), contentType: `multipart/form-data; boundary=${boundary}` };
}

const image = await sharp({ create: { width: side, height: side, channels: 3, background: '#6d6d6d' } })
  .composite([{ input: { create: { width: side >> 3, height: side >> 3, channels: 3, background: '#ff0000' } }, left: side >> 2, top: side >> 2 }])
  .png()
  .toBuffer();
const { body, contentType } = multipartBody(image, { category: 'metal plate', map: args.map });

const server = await startServer();
try {
  await waitReady(server.base);
  // Warm-up: the category's text embeddings get cached, as they would be in production.
  for (let i = 0; i < 5; i++) await fetch(`${server.base}/v1/detect`, { method: 'POST', headers: { 'content-type': contentType }, body: new Uint8Array(body) });
  const rssBefore = await serverRssMb(server.base);

  const run = autocannon({
    url: `${server.base}/v1/detect`,
    method: 'POST',
    headers: { 'content-type': contentType },
    body,
    connections,
    amount: maxRequests,
    timeout: 30,
  });
  // autocannon's `amount` overrides `duration`; the time bound is enforced here.
  const timer = setTimeout(() => run.stop(), seconds * 1000);
  const result = await run;
  clearTimeout(timer);
  const rssAfter = await serverRssMb(server.base);

  const total = Object.values(result.statusCodeStats).reduce((n, s) => n + Number(s.count), 0);
  const statuses = Object.entries(result.statusCodeStats)
    .map(([code, s]) => `${code}: ${s.count}`)
    .join(', ');
  const lines = [
    `load test: POST /v1/detect, multipart ${side}×${side} PNG (${(body.length / 1024).toFixed(1)} kB), map=${args.map}, ${connections} connections, ≤ ${seconds} s, ≤ ${maxRequests} requests`,
    `server: demo (tiny random model), 127.0.0.1, ${process.env.WORKERS ?? 1} worker(s)`,
    `duration        ${result.duration.toFixed(1)} s`,
    `requests        ${total} (${statuses || 'none'})`,
    `requests/s      ${(total / result.duration).toFixed(1)}`,
    `latency p50     ${result.latency.p50} ms`,
    `latency p99     ${result.latency.p99} ms (max ${result.latency.max} ms)`,
    `non-2xx         ${result.non2xx}`,
    `errors          ${result.errors} (timeouts ${result.timeouts})`,
    `server RSS      ${rssBefore.toFixed(0)} MB before, ${rssAfter.toFixed(0)} MB after`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
} finally {
  const code = await server.stop();
  if (code !== 0) process.stderr.write(`the demo server exited with code ${code}\n`);
}
