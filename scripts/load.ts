// `npm run load`: starts the demo server (tiny random model) as a child on 127.0.0.1, fires
// multipart detections at it with autocannon, bounded in time and in requests, and prints
// requests/s, p50/p99 latency, error counts and the server's RSS before and after.
//
//   npm run load -- [--seconds 20] [--requests 5000] [--connections 8] [--map png] [--size 256]
//                   [--replicas 2 | --replicas 1,2] [--store-url postgres://…] [--targets http://a,http://b]
//
// Several replicas: --replicas N starts N demo servers (each its own DATA_DIR, or one PostgreSQL
// database with --store-url: a fresh schema, dropped afterwards) and spreads the connections
// over them round-robin, as a load balancer spreads connections; --replicas 1,2 measures one
// count after the other in the same run and prints the ratio. --targets sends to servers that
// are already running (nothing is started).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import sharp from 'sharp';
import { createCli } from './cli.ts';

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

const USAGE = `Usage: npm run load -- [--seconds 20] [--requests 5000] [--connections 8] [--map none|grid|png|overlay]
                     [--size 256] [--replicas N | --replicas 1,2] [--store-url postgres://…] [--targets http://a,http://b]

Starts the demo server (tiny random model) and fires multipart detections at it; prints
requests/s, p50/p99 latency, status counts and the server's RSS. Exit code 1 when no request succeeded.`;
const cli = createCli('load', USAGE, '\n\nRun npm run load -- --help for the options.');
const args = cli.parse(process.argv.slice(2), {
  seconds: { type: 'string', default: '20' },
  requests: { type: 'string', default: '5000' },
  connections: { type: 'string', default: '8' },
  map: { type: 'string', default: 'png' },
  size: { type: 'string', default: '256' },
  replicas: { type: 'string' },
  'store-url': { type: 'string' },
  targets: { type: 'string' },
});
const seconds = Math.min(300, cli.wholeNumber('seconds', args.seconds, 20, 1));
const maxRequests = Math.min(1_000_000, cli.wholeNumber('requests', args.requests, 5000, 1));
const connections = Math.min(256, cli.wholeNumber('connections', args.connections, 8, 1));
const side = cli.wholeNumber('size', args.size, 256, 8);
if (side > 8192) cli.fail(`--size must be at most 8192, got ${side}`);
if (!['none', 'grid', 'png', 'overlay'].includes(args.map)) cli.fail(`--map must be none, grid, png or overlay, got "${args.map}"`);
const targets = args.targets?.split(',').filter(Boolean);
const replicaCounts = (args.replicas ?? '1').split(',').map(Number);
if (replicaCounts.some((n) => !Number.isInteger(n) || n < 1 || n > 8)) cli.fail('--replicas: whole numbers from 1 to 8, e.g. 2 or 1,2');
const storeUrl = args['store-url'];
if (storeUrl && !/^postgres(ql)?:\/\//.test(storeUrl)) cli.fail('--store-url: a postgres:// URL');

/** Every demo server started, stopped on Ctrl-C or SIGTERM too: none is left running without its parent. */
const started = new Set<Server>();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    process.stderr.write(`\nload: ${signal}: stopping the demo server(s)\n`);
    void Promise.all([...started].map((s) => s.stop())).finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  });
}

interface Server {
  base: string;
  stop(): Promise<number | null>;
  /** The server's last log lines (printed when it exits badly). */
  tail: string[];
}

function startServer(extraEnv: Record<string, string> = {}): Promise<Server> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/demo.ts'], {
    // Loopback only, an ephemeral port; logs at info as in production (read here, then discarded).
    env: { ...process.env, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', ...extraEnv },
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
        // Only the last lines are kept: what explains an unclean exit.
        const tail: string[] = [];
        let rest = '';
        child.stdout.on('data', (more: Buffer) => {
          const lines = (rest + more.toString('utf8')).split('\n');
          rest = lines.pop()!;
          tail.push(...lines.filter((l) => !l.includes('"request completed"')));
          tail.splice(0, Math.max(0, tail.length - 40));
        });
        const server: Server = {
          tail,
          base: m[1],
          stop: () => {
            started.delete(server);
            child.kill('SIGTERM');
            return exited;
          },
        };
        started.add(server);
        resolve(server);
      }
    });
    void exited.then((code) => reject(new Error(`the demo server exited (code ${code}) before listening`)));
  });
}

async function waitReady(base: string): Promise<void> {
  for (let i = 0; i < 1200; i++) {
    const res = await fetch(`${base}/readyz`).catch(() => undefined);
    if (res?.status === 200) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the server at ${base} did not become ready within 120 s`);
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

interface Measured {
  replicas: number;
  total: number;
  duration: number;
  lines: string[];
}

/** One load run over `bases`: the connections spread round-robin, one autocannon per server. */
async function measure(bases: string[], describeServer: string): Promise<Measured> {
  // Warm-up: the category's text embeddings get cached, as they would be in production.
  for (const base of bases) for (let i = 0; i < 5; i++) await fetch(`${base}/v1/detect`, { method: 'POST', headers: { 'content-type': contentType }, body: new Uint8Array(body) });
  const rssBefore = await Promise.all(bases.map(serverRssMb));
  const share = (i: number, of: number) => Math.floor(of / bases.length) + (i < of % bases.length ? 1 : 0);
  const load = loadavg()[0]!;
  const runs = bases.map((base, i) =>
    autocannon({
      url: `${base}/v1/detect`,
      method: 'POST',
      headers: { 'content-type': contentType },
      body,
      connections: Math.max(1, share(i, connections)),
      amount: Math.max(1, share(i, maxRequests)),
      timeout: 30,
    }),
  );
  // autocannon's `amount` overrides `duration`; the time bound is enforced here.
  const began = performance.now();
  const timer = setTimeout(() => runs.forEach((r) => r.stop()), seconds * 1000);
  const results = await Promise.all(runs);
  clearTimeout(timer);
  // autocannon reports whole seconds: the wall time of the runs, measured here.
  const wall = (performance.now() - began) / 1000;
  const rssAfter = await Promise.all(bases.map(serverRssMb));

  const count = (r: AutocannonResult) => Object.values(r.statusCodeStats).reduce((n, s) => n + Number(s.count), 0);
  const total = results.reduce((n, r) => n + count(r), 0);
  const duration = wall;
  const statuses = new Map<string, number>();
  for (const r of results) for (const [code, s] of Object.entries(r.statusCodeStats)) statuses.set(code, (statuses.get(code) ?? 0) + Number(s.count));
  const sum = (f: (r: AutocannonResult) => number) => results.reduce((n, r) => n + f(r), 0);
  const perServer = (f: (r: AutocannonResult) => number | string) => results.map(f).join(' / ');
  const lines = [
    `load test: POST /v1/detect, multipart ${side}×${side} PNG (${(body.length / 1024).toFixed(1)} kB), map=${args.map}, ${connections} connections, ≤ ${seconds} s, ≤ ${maxRequests} requests`,
    `server: ${describeServer}`,
    `load average    ${load.toFixed(2)} (1 min, at the start)`,
    `duration        ${duration.toFixed(1)} s`,
    `requests        ${total} (${[...statuses].map(([c, n]) => `${c}: ${n}`).join(', ') || 'none'})`,
    `requests/s      ${(total / duration).toFixed(1)}${bases.length > 1 ? ` (per server ${perServer((r) => (count(r) / duration).toFixed(1))})` : ''}`,
    `latency p50     ${perServer((r) => r.latency.p50)} ms`,
    `latency p99     ${perServer((r) => r.latency.p99)} ms (max ${Math.max(...results.map((r) => r.latency.max))} ms)`,
    `non-2xx         ${sum((r) => r.non2xx)}`,
    `errors          ${sum((r) => r.errors)} (timeouts ${sum((r) => r.timeouts)})`,
    `server RSS      ${rssBefore.map((m) => m.toFixed(0)).join(' / ')} MB before, ${rssAfter.map((m) => m.toFixed(0)).join(' / ')} MB after`,
  ];
  const ok = [...statuses].filter(([c]) => c.startsWith('2')).reduce((n, [, k]) => n + k, 0);
  if (ok === 0) process.exitCode = 1;
  if (ok < total) lines.push(`warning         ${total - ok} of ${total} requests were not answered 2xx${ok === 0 ? ': none succeeded (exit code 1)' : ''}`);
  return { replicas: bases.length, total, duration, lines };
}

/** N demo servers on one store: a fresh PostgreSQL schema with --store-url, else a data folder each. */
async function withReplicas<T>(n: number, fn: (bases: string[]) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'load-'));
  const schema = `load_${process.pid}_${n}`;
  const servers: Server[] = [];
  try {
    for (let i = 0; i < n; i++) {
      // One after the other: the first builds the graphs (and migrates), the others reuse them.
      const env: Record<string, string> = storeUrl ? { STORE_URL: storeUrl, STORE_SCHEMA: schema } : { DATA_DIR: join(dir, `data-${i}`) };
      const server = await startServer(env);
      servers.push(server);
      await waitReady(server.base);
    }
    return await fn(servers.map((s) => s.base));
  } finally {
    for (const server of servers) {
      const code = await server.stop();
      if (code !== 0) process.stderr.write(`a demo server exited with code ${code}; its last log lines:\n${server.tail.join('\n')}\n`);
    }
    rmSync(dir, { recursive: true, force: true });
    if (storeUrl) {
      const client = new pg.Client({ connectionString: storeUrl });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).finally(() => client.end());
    }
  }
}

const workers = process.env.WORKERS ?? '1';
if (targets?.length) {
  for (const base of targets) await waitReady(base);
  const run = await measure(targets, `${targets.length} running server(s): ${targets.join(', ')}`);
  process.stdout.write(`${run.lines.join('\n')}\n`);
} else if (args.replicas === undefined) {
  // The original single-server run: the demo's own data folder.
  const server = await startServer();
  try {
    await waitReady(server.base);
    const run = await measure([server.base], `demo (tiny random model), 127.0.0.1, ${workers} worker(s)`);
    process.stdout.write(`${run.lines.join('\n')}\n`);
  } finally {
    const code = await server.stop();
    if (code !== 0) process.stderr.write(`the demo server exited with code ${code}; its last log lines:\n${server.tail.join('\n')}\n`);
  }
} else {
  const runs: Measured[] = [];
  for (const n of replicaCounts) {
    const store = storeUrl ? 'one PostgreSQL schema' : 'a data folder each';
    const run = await withReplicas(n, (bases) => measure(bases, `${n} demo replica(s) (tiny random model), ${workers} worker(s) each, ${store}, connections round-robin`));
    process.stdout.write(`${run.lines.join('\n')}\n\n`);
    runs.push(run);
  }
  if (runs.length > 1) {
    const floor = runs[0]!.total / runs[0]!.duration;
    for (const r of runs.slice(1)) process.stdout.write(`${r.replicas} replicas vs ${runs[0]!.replicas}: ${((r.total / r.duration) / floor).toFixed(2)}× the requests/s\n`);
  }
}
