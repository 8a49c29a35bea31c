// `npm run reliability`: the figures of issue 13 against the demo server (tiny random model)
// started as a child process on 127.0.0.1, each scenario on a fresh data folder:
//   (a) overload: --seconds at concurrency 4, then at 32 with the default queue: successful
//       throughput at 32 as a ratio of 4, every non-200 a 503 with Retry-After, p99 of the 503s;
//   (b) stalled uploads: --stalled uploads (the PNG's header, then --stall-mb of its body, then
//       nothing; reopened as the server cuts them, after Retry-After when refused) beside normal
//       traffic at concurrency 4 for --seconds: throughput as a ratio of the same traffic without
//       them, server RSS growth, every stalled socket closed: 408 at BODY_IDLE_TIMEOUT_MS after
//       its last progress, or refused 503 at once when the body budget is full;
//   (c) webhooks: a receiver that hangs for --hang-seconds, then fails 3 times (HTTP 500), then
//       recovers; --events anomalous detections (threshold=0) meanwhile, the server restarted
//       halfway: every event delivered (event ids counted at the receiver; duplicates only
//       across the restart, listed by id), server RSS, outbox bytes against its bound.
// Prints one table (and the load average); exit code 1 when a figure misses its target.
//
//   npm run reliability -- [--seconds 60] [--hang-seconds 120] [--events 1000] [--stalled 100]
//                          [--stall-mb 20] [--only a,b,c] [--profile DIR (server CPU profiles)]
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    'hang-seconds': { type: 'string', default: '120' },
    events: { type: 'string', default: '1000' },
    stalled: { type: 'string', default: '100' },
    'stall-mb': { type: 'string', default: '20' },
    'outbox-max-bytes': { type: 'string', default: String(16 * 1024 * 1024) },
    only: { type: 'string', default: 'a,b,c' },
    // A folder: the server runs with --cpu-prof and writes its CPU profiles there on exit.
    profile: { type: 'string' },
  },
});
const seconds = Number(args.seconds);
const hangSeconds = Number(args['hang-seconds']);
const eventCount = Number(args.events);
const stalledCount = Number(args.stalled);
const stallBytes = Math.round(Number(args['stall-mb']) * 1024 * 1024);
const outboxMaxBytes = Number(args['outbox-max-bytes']);
const only = new Set(args.only.split(','));
const BODY_IDLE_MS = 10_000; // the service's default BODY_IDLE_TIMEOUT_MS
const loadAverages: number[][] = [];
const sampleLoad = () => loadAverages.push(loadavg());

// ---------------------------------------------------------------------------------------------
// The server

interface Server {
  base: string;
  child: ChildProcess;
  stop(): Promise<number | null>;
}

function startServer(env: Record<string, string>): Promise<Server> {
  const profiling = args.profile ? ['--cpu-prof', `--cpu-prof-dir=${args.profile}`] : [];
  const child = spawn(process.execPath, [...profiling, '--import', 'tsx', 'scripts/demo.ts'], {
    env: { ...process.env, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  return new Promise((resolve, reject) => {
    let out = '';
    const onData = (chunk: Buffer) => {
      out += chunk.toString('utf8');
      const m = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (!m) return;
      child.stdout!.off('data', onData);
      child.stdout!.resume(); // keep draining the log
      resolve({
        base: m[1],
        child,
        stop: () => {
          child.kill('SIGTERM');
          return exited;
        },
      });
    };
    child.stdout!.on('data', onData);
    void exited.then((code) => reject(new Error(`the demo server exited (code ${code}) before listening`)));
  });
}

async function waitReady(base: string): Promise<void> {
  for (let i = 0; i < 1200; i++) {
    const res = await fetch(`${base}/readyz`).catch(() => undefined);
    if (res?.status === 200) return;
    await sleep(100);
  }
  throw new Error('the demo server did not become ready within 120 s');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function metrics(base: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    // Each series by its full name (labels included) and summed by metric name.
    const m = /^([a-z0-9_]+)(\{[^}]*\})? ([0-9.e+-]+)$/.exec(line);
    if (!m) continue;
    out[m[1]] = (out[m[1]] ?? 0) + Number(m[3]);
    if (m[2]) out[m[1] + m[2]] = Number(m[3]);
  }
  return out;
}
const rssMb = async (base: string) => (await metrics(base)).process_resident_memory_bytes / 2 ** 20;

function folderBytes(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) total += statSync(join(entry.parentPath ?? (entry as unknown as { path: string }).path, entry.name)).size;
  }
  return total;
}

// ---------------------------------------------------------------------------------------------
// Traffic

const side = 256;
const image = await sharp({ create: { width: side, height: side, channels: 3, background: '#6d6d6d' } })
  .composite([{ input: { create: { width: 32, height: 32, channels: 3, background: '#ff0000' } }, left: 64, top: 64 }])
  .png()
  .toBuffer();

interface Outcome {
  status: number;
  ms: number;
  retryAfter?: string;
  body?: string;
}

function post(agent: http.Agent, base: string, path: string, body: Buffer, keepBody = false): Promise<Outcome> {
  const url = new URL(path, base);
  const started = performance.now();
  return new Promise((resolve) => {
    const req = http.request(
      { agent, host: url.hostname, port: url.port, path: url.pathname + url.search, method: 'POST', headers: { 'content-type': 'image/png', 'content-length': body.length } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => keepBody && chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, ms: performance.now() - started, retryAfter: res.headers['retry-after'] as string | undefined, body: keepBody ? Buffer.concat(chunks).toString() : undefined }),
        );
      },
    );
    req.on('error', () => resolve({ status: 0, ms: performance.now() - started }));
    req.end(body);
  });
}

/** `concurrency` clients posting back to back for `ms`; every answer kept. */
async function closedLoop(base: string, concurrency: number, ms: number, path = '/v1/detect?category=metal%20plate&map=none'): Promise<{ outcomes: Outcome[]; seconds: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const outcomes: Outcome[] = [];
  const started = performance.now();
  const end = started + ms;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) outcomes.push(await post(agent, base, path, image));
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  agent.destroy();
  return { outcomes, seconds: elapsed };
}

const quantile = (values: number[], q: number) => {
  if (!values.length) return NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};
const ok200 = (o: Outcome[]) => o.filter((x) => x.status === 200).length;

// ---------------------------------------------------------------------------------------------
// The table

interface Row {
  scenario: string;
  figure: string;
  value: string;
  target: string;
  met: boolean | undefined;
}
const rows: Row[] = [];
const row = (scenario: string, figure: string, value: string, target = '', met?: boolean) => {
  rows.push({ scenario, figure, value, target, met });
  process.stderr.write(`  ${scenario} ${figure}: ${value}${target ? ` (target ${target})` : ''}\n`);
};

const freshData = () => mkdtempSync(join(tmpdir(), 'reliability-'));
const baseEnv = (data: string): Record<string, string> => ({ DATA_DIR: data, KEEP_DETECTION_IMAGES: '0' });

// (a) ------------------------------------------------------------------------------------------
async function overload(): Promise<void> {
  const data = freshData();
  const server = await startServer(baseEnv(data));
  try {
    await waitReady(server.base);
    await closedLoop(server.base, 2, 2000); // warm-up: text embeddings cached
    sampleLoad();
    process.stderr.write(`(a) ${seconds} s at concurrency 4, then 32 (MAX_QUEUE default)\n`);
    const before4 = await metrics(server.base);
    const clientCpu4 = process.cpuUsage();
    const c4 = await closedLoop(server.base, 4, seconds * 1000);
    const cpu4 = process.cpuUsage(clientCpu4);
    const after4 = await metrics(server.base);
    // Where the time goes at c=32: the client's own CPU (it runs on the same cores) and the
    // server's CPU and event-loop lag over the run.
    const before = await metrics(server.base);
    const clientCpu = process.cpuUsage();
    const c32 = await closedLoop(server.base, 32, seconds * 1000);
    const cpu = process.cpuUsage(clientCpu);
    const after = await metrics(server.base);
    sampleLoad();
    const t4 = ok200(c4.outcomes) / c4.seconds;
    const t32 = ok200(c32.outcomes) / c32.seconds;
    const non200 = c32.outcomes.filter((o) => o.status !== 200);
    const refused = non200.filter((o) => o.status === 503);
    const withRetry = refused.filter((o) => o.retryAfter !== undefined);
    const p99 = quantile(refused.map((o) => o.ms), 0.99);
    row('a', 'successful throughput c=4', `${t4.toFixed(1)} /s`);
    row('a', 'successful throughput c=32', `${t32.toFixed(1)} /s (${ok200(c32.outcomes)} of ${c32.outcomes.length} answers)`);
    row('a', 'ratio c=32 / c=4', (t32 / t4).toFixed(3), '≥ 0.90', t32 / t4 >= 0.9);
    row('a', 'non-200 at c=32', `${non200.length}: ${refused.length} × 503, ${withRetry.length} with Retry-After`, 'all 503 + Retry-After', non200.length === withRetry.length);
    const serverCpu = (after.process_cpu_seconds_total - before.process_cpu_seconds_total) / c32.seconds;
    row(
      'a',
      'CPU at c=4 (cores)',
      `server ${((after4.process_cpu_seconds_total - before4.process_cpu_seconds_total) / c4.seconds).toFixed(2)}, this client ${((cpu4.user + cpu4.system) / 1e6 / c4.seconds).toFixed(2)}; server event-loop lag p99 ${((after4.nodejs_eventloop_lag_p99_seconds ?? NaN) * 1000).toFixed(0)} ms`,
    );
    row(
      'a',
      'CPU at c=32 (cores)',
      `server ${serverCpu.toFixed(2)}, this client ${((cpu.user + cpu.system) / 1e6 / c32.seconds).toFixed(2)}; server event-loop lag p99 ${((after.nodejs_eventloop_lag_p99_seconds ?? NaN) * 1000).toFixed(0)} ms`,
    );
    // Mean time per detection in each stage, c=4 against c=32: where a busier server spends more.
    const stages = (a: Record<string, number>, b: Record<string, number>) =>
      Object.keys(b)
        .map((k) => /^detection_stage_duration_seconds_sum\{stage="([^"]+)"\}$/.exec(k)?.[1])
        .filter((st): st is string => st !== undefined)
        .map((st) => {
          const sum = b[`detection_stage_duration_seconds_sum{stage="${st}"}`] - (a[`detection_stage_duration_seconds_sum{stage="${st}"}`] ?? 0);
          const n = b[`detection_stage_duration_seconds_count{stage="${st}"}`] - (a[`detection_stage_duration_seconds_count{stage="${st}"}`] ?? 0);
          return `${st} ${n > 0 ? ((1000 * sum) / n).toFixed(1) : '–'}`;
        })
        .join(', ');
    row('a', 'stage means c=4 (ms)', stages(before4, after4));
    row('a', 'stage means c=32 (ms)', stages(before, after));
    row('a', 'p99 of 503s', refused.length ? `${p99.toFixed(1)} ms (p50 ${quantile(refused.map((o) => o.ms), 0.5).toFixed(1)} ms)` : 'no 503', '≤ 20 ms', refused.length ? p99 <= 20 : undefined);
  } finally {
    await server.stop();
    rmSync(data, { recursive: true, force: true });
  }
}

// (b) ------------------------------------------------------------------------------------------
interface Stall {
  opened: number;
  lastByte: number;
  closed?: number;
  status?: number;
}

/** The stalled uploads' body (a real PNG's start), made once: 20 MB per attempt would cost this client more CPU than the server. */
let stallBodyBytes: Buffer | undefined;
function stallBody(): Buffer {
  if (!stallBodyBytes) {
    stallBodyBytes = Buffer.alloc(stallBytes);
    image.copy(stallBodyBytes, 0, 0, Math.min(image.length, stallBytes));
  }
  return stallBodyBytes;
}

/** One upload that sends its headers and `stallBytes` of body (a real PNG's start), then nothing; resolves with its record once closed. */
function stallUpload(base: string, record: Stall[]): Promise<Stall> {
  const url = new URL(base);
  return new Promise((resolve) => {
    const s: Stall = { opened: performance.now(), lastByte: performance.now() };
    record.push(s);
    const socket = net.connect(Number(url.port), url.hostname);
    let answer = '';
    socket.on('connect', () => {
      const declared = stallBytes + 1024 * 1024; // never all sent
      socket.write(`POST /v1/detect?category=metal%20plate HTTP/1.1\r\nHost: ${url.host}\r\nContent-Type: image/png\r\nContent-Length: ${declared}\r\n\r\n`);
      const body = stallBody();
      // In 256 kB pieces: each callback says the kernel took that piece, so lastByte is when
      // this client last made progress (the server may hold its socket paused for a while).
      for (let at = 0; at < body.length; at += 256 * 1024) {
        socket.write(body.subarray(at, Math.min(body.length, at + 256 * 1024)), (err) => {
          if (!err) s.lastByte = performance.now();
        });
      }
    });
    socket.on('data', (d: Buffer) => {
      answer += d.toString('latin1');
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      s.closed = performance.now();
      const m = /^HTTP\/1\.1 (\d{3})/.exec(answer);
      s.status = m ? Number(m[1]) : 0;
      resolve(s);
    });
  });
}

async function stalledUploads(): Promise<void> {
  const data = freshData();
  const server = await startServer(baseEnv(data));
  try {
    await waitReady(server.base);
    await closedLoop(server.base, 2, 2000);
    sampleLoad();
    process.stderr.write(`(b) ${seconds} s of concurrency-4 traffic, then the same beside ${stalledCount} stalled uploads of ${(stallBytes / 2 ** 20).toFixed(0)} MB\n`);
    const baseline = await closedLoop(server.base, 4, seconds * 1000);
    const rssBefore = await rssMb(server.base);
    const stalls: Stall[] = [];
    let keepStalling = true;
    let rssMax = rssBefore;
    const sampler = setInterval(() => void rssMb(server.base).then((r) => (rssMax = Math.max(rssMax, r)), () => {}), 1000);
    // A refused upload (503: the body budget is full) comes back after its Retry-After.
    const lanes = Array.from({ length: stalledCount }, async () => {
      while (keepStalling) {
        // This lane's own record (the shared list's last one may be another lane's).
        const s = await stallUpload(server.base, stalls);
        if (s.status === 503) await sleep(1000);
      }
    });
    const loaded = await closedLoop(server.base, 4, seconds * 1000);
    keepStalling = false;
    const rssLoaded = await rssMb(server.base);
    // The last ones opened get their bound too.
    await Promise.race([Promise.all(lanes), sleep(BODY_IDLE_MS + 20_000)]);
    clearInterval(sampler);
    sampleLoad();
    const t0 = ok200(baseline.outcomes) / baseline.seconds;
    const t1 = ok200(loaded.outcomes) / loaded.seconds;
    const closed = stalls.filter((s) => s.closed !== undefined);
    // From the connection's start, and from the client's last progress (the last piece the
    // kernel took): the bound is on the second, as a stalled body is one that stops progressing.
    const heldMs = closed.map((s) => s.closed! - s.opened);
    const maxHeld = Math.max(...heldMs);
    const answered408 = closed.filter((s) => s.status === 408).length;
    const refused = closed.filter((s) => s.status === 503);
    const refusedMs = refused.map((s) => s.closed! - s.opened);
    const afterStall = closed.filter((s) => s.status !== 503).map((s) => s.closed! - s.lastByte);
    const maxAfterStall = Math.max(0, ...afterStall);
    row('b', 'throughput without / with stalls', `${t0.toFixed(1)} / ${t1.toFixed(1)} /s`);
    row('b', 'ratio with / without', (t1 / t0).toFixed(3), '≥ 0.90', t1 / t0 >= 0.9);
    row('b', 'server RSS', `${rssBefore.toFixed(0)} MB before, ${rssMax.toFixed(0)} MB max, ${rssLoaded.toFixed(0)} MB at the end (+${(rssMax - rssBefore).toFixed(0)} MB)`, '< +100 MB', rssMax - rssBefore < 100);
    row(
      'b',
      'stalled sockets closed',
      `${closed.length} of ${stalls.length}: ${answered408} admitted, stalled and answered 408 ≤ ${(maxAfterStall / 1000).toFixed(1)} s after the client's last progress (p50 ${(quantile(afterStall, 0.5) / 1000).toFixed(1)} s); ${refused.length} refused 503 (body budget full) ≤ ${(Math.max(0, ...refusedMs) / 1000).toFixed(2)} s after they opened; ${closed.length - answered408 - refused.length} closed without an answer; all ≤ ${(maxHeld / 1000).toFixed(1)} s from their start`,
      `all, ${BODY_IDLE_MS / 1000} s after the last progress`,
      closed.length === stalls.length && maxAfterStall <= BODY_IDLE_MS + 2000,
    );
  } finally {
    await server.stop();
    rmSync(data, { recursive: true, force: true });
  }
}

// (c) ------------------------------------------------------------------------------------------
async function webhooks(): Promise<void> {
  const data = freshData();
  // The receiver: hangs (accepts, never answers) until hangUntil, then 3 × HTTP 500, then 200.
  const deliveries = new Map<string, number[]>(); // event id → times answered 200
  let failuresLeft = 3;
  let hangUntil = 0;
  let hung = 0;
  const receiver = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const id = String(req.headers['x-webhook-id'] ?? '');
      if (Date.now() < hangUntil) {
        hung++;
        return; // never answered: the sender's WEBHOOK_TIMEOUT_MS ends the attempt
      }
      if (failuresLeft > 0) {
        failuresLeft--;
        res.writeHead(500).end();
        return;
      }
      const times = deliveries.get(id) ?? [];
      times.push(Date.now());
      deliveries.set(id, times);
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const port = (receiver.address() as net.AddressInfo).port;
  const env = {
    ...baseEnv(data),
    WEBHOOK_URL: `http://127.0.0.1:${port}/hook`,
    WEBHOOK_SECRET: 'reliability-script-secret',
    // Enough attempts to outlast the hang (backoff doubles from 1 s, capped at 5 min).
    WEBHOOK_MAX_ATTEMPTS: '50',
    WEBHOOK_OUTBOX_MAX_BYTES: String(outboxMaxBytes),
  };
  let server = await startServer(env);
  const rss: Array<{ at: number; mb: number; process: number }> = [];
  let pendingBytesMax = 0;
  let dataBytesMax = 0;
  let processNo = 1;
  let restartAt = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      try {
        const m = await metrics(server.base);
        rss.push({ at: Date.now(), mb: m.process_resident_memory_bytes / 2 ** 20, process: processNo });
        pendingBytesMax = Math.max(pendingBytesMax, m.webhook_outbox_pending_bytes ?? 0);
      } catch {
        // restarting
      }
      dataBytesMax = Math.max(dataBytesMax, folderBytes(data));
      await sleep(1000);
    }
  })();
  let rssWarm = 0;
  try {
    await waitReady(server.base);
    // Warm-up, not anomalous (threshold=1): the RSS to compare with is the one after it. The
    // process's native memory (allocator arenas of the thread pool and the workers) grows by
    // ~80–100 MB over its first few hundred detections and then stays flat, events or not
    // (measured with threshold=1 and 0 alike), so the warm-up runs 500 of them.
    const warm = new http.Agent({ keepAlive: true, maxSockets: 4 });
    let warmed = 0;
    await Promise.all(Array.from({ length: 4 }, async () => {
      while (warmed++ < 500) await post(warm, server.base, '/v1/detect?category=metal%20plate&map=none&threshold=1', image);
    }));
    warm.destroy();
    rssWarm = await rssMb(server.base);
    hangUntil = Date.now() + hangSeconds * 1000;
    const started = Date.now();
    sampleLoad();
    process.stderr.write(`(c) receiver hangs ${hangSeconds} s, then fails 3 times; ${eventCount} anomalous detections, a restart halfway\n`);
    const agent = () => new http.Agent({ keepAlive: true, maxSockets: 4 });
    let sent = 0;
    let anomalous = 0;
    const send = async (n: number) => {
      const a = agent();
      let next = 0;
      await Promise.all(
        Array.from({ length: 4 }, async () => {
          while (next < n) {
            next++;
            const o = await post(a, server.base, '/v1/detect?category=metal%20plate&map=none&threshold=0', image, true);
            if (o.status !== 200) throw new Error(`detection answered ${o.status}: ${o.body}`);
            sent++;
            if (JSON.parse(o.body!).isAnomalous) anomalous++;
          }
        }),
      );
      a.destroy();
    };
    await send(Math.floor(eventCount / 2));
    // One restart: SIGTERM (graceful), a new process on the same data folder.
    restartAt = Date.now();
    const code = await server.stop();
    processNo = 2;
    server = await startServer(env);
    await waitReady(server.base);
    await send(eventCount - Math.floor(eventCount / 2));
    const sentAt = Date.now();
    // Drain: every event at the receiver (the hang, the failures, the backoff).
    const deadline = Date.now() + (hangSeconds + 600) * 1000;
    while (deliveries.size < anomalous && Date.now() < deadline) await sleep(500);
    const drainedAt = Date.now();
    await sleep(3000); // late duplicates
    sampleLoad();
    const m = await metrics(server.base);
    const duplicates = [...deliveries].filter(([, t]) => t.length > 1);
    const acrossRestart = duplicates.filter(([, t]) => t[0] < restartAt && t.slice(1).every((x) => x >= restartAt));
    const p1 = rss.filter((r) => r.process === 1).map((r) => r.mb);
    const p2 = rss.filter((r) => r.process === 2).map((r) => r.mb);
    const span = (v: number[]) => (v.length ? `${v[0].toFixed(0)} → ${v[v.length - 1].toFixed(0)} MB (max ${Math.max(...v).toFixed(0)})` : 'n/a');
    row('c', 'detections', `${sent} sent, ${anomalous} anomalous, in ${((sentAt - started) / 1000).toFixed(0)} s; restart after ${Math.floor(eventCount / 2)} (exit code ${code})`);
    row('c', 'receiver', `${hung} attempts hung, 3 answered 500, all delivered ${((drainedAt - started) / 1000).toFixed(0)} s after the start (${((drainedAt - hangUntil) / 1000).toFixed(0)} s after the hang)`);
    row('c', 'events delivered (distinct ids)', `${deliveries.size} of ${anomalous}`, 'all', deliveries.size === anomalous);
    row(
      'c',
      'duplicates',
      `${duplicates.length} (${acrossRestart.length} across the restart)${duplicates.length ? `: ${duplicates.slice(0, 5).map(([id]) => id).join(', ')}${duplicates.length > 5 ? ', …' : ''}` : ''}`,
      'only across the restart',
      duplicates.length === acrossRestart.length,
    );
    const failed = m['webhook_deliveries_total{outcome="failed"}'] ?? 0;
    const dropped = m.webhook_outbox_dropped_total ?? 0;
    row('c', 'given up / dropped (2nd process)', `${failed} given up, ${dropped} dropped`, '0', failed === 0 && dropped === 0);
    const rssMax = Math.max(...p1, ...p2);
    row('c', 'server RSS', `after warm-up ${rssWarm.toFixed(0)} MB; 1st process ${span(p1)}; 2nd ${span(p2)}`, 'flat: max < warm-up + 100 MB', rssMax - rssWarm < 100);
    row('c', 'outbox bytes (max pending)', `${(pendingBytesMax / 2 ** 20).toFixed(2)} MB; data folder max ${(dataBytesMax / 2 ** 20).toFixed(1)} MB`, `≤ WEBHOOK_OUTBOX_MAX_BYTES = ${(outboxMaxBytes / 2 ** 20).toFixed(0)} MB`, pendingBytesMax <= outboxMaxBytes);
  } finally {
    sampling = false;
    await sampler;
    await server.stop();
    receiver.closeAllConnections();
    receiver.close();
    rmSync(data, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------

const started = new Date();
try {
  if (only.has('a')) await overload();
  if (only.has('b')) await stalledUploads();
  if (only.has('c')) await webhooks();
} finally {
  const cmd = `npm run reliability -- ${process.argv.slice(2).join(' ')}`.trim();
  const load = loadAverages.map((l) => l[0].toFixed(2)).join(', ');
  const lines = [
    `reliability figures (${cmd}), ${started.toISOString()}, demo server (tiny random model, WORKERS=${process.env.WORKERS ?? 1}), load average (1 min) at the phases: ${load || 'n/a'}`,
    '',
    '| scenario | figure | value | target | met |',
    '|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.scenario} | ${r.figure} | ${r.value} | ${r.target} | ${r.met === undefined ? '' : r.met ? 'yes' : '**no**'} |`),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  if (rows.some((r) => r.met === false)) process.exitCode = 1;
}
