// The real server process: --help, settings validation (environment and CONFIG_FILE), and a
// graceful shutdown on SIGTERM with a request in flight (the demo server on a generated model).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { loadSettings, SETTINGS } from '../../src/settings.ts';

const ROOT = join(import.meta.dirname, '..', '..');
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'server-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Only what the server needs: no settings leak in from the developer's environment. */
const baseEnv = () => ({ PATH: process.env.PATH ?? '', HOME: dir });

function runServer(args: string[], env: Record<string, string>) {
  return spawnSync(process.execPath, ['--import', 'tsx', 'src/server.ts', ...args], { cwd: ROOT, env: { ...baseEnv(), ...env }, encoding: 'utf8', timeout: 30_000 });
}

describe('start-up', () => {
  it('--help lists every setting with its default, CONFIG_FILE included', () => {
    const run = runServer(['--help'], {});
    expect(run.status).toBe(0);
    for (const spec of Object.values(SETTINGS)) expect(run.stdout).toContain(spec.env);
    expect(run.stdout).toMatch(/CONFIG_FILE\s+optional JSON file/);
    expect(run.stdout).toMatch(/MAX_SIDE\s+.*\(default: 16384\)/);
    expect(run.stdout).toMatch(/REQUEST_TIMEOUT_MS\s+.*\(default: 60000\)/);
  });

  it('an argument is refused (exit 2): every setting is an environment variable', () => {
    const run = runServer(['--port', '8080'], {});
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/unknown arguments --port 8080: the server takes its settings from the environment/);
  });

  it('numbers are plain decimals, and the message says what is allowed', () => {
    const run = runServer([], { PORT: 'abc', MAX_QUEUE: '0x10', MODEL: join(dir, 'none') });
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/PORT="abc": a whole number from 0 to 65535/);
    expect(run.stderr).toMatch(/MAX_QUEUE="0x10": a whole number from 0 to 100000/);
    expect(run.stderr).toMatch(/npm start -- --help lists every setting/);
  });

  it('a wrong value stops start-up (exit 2) naming the variable and what it allows', () => {
    const run = runServer([], { LOG_LEVEL: 'loud', MAX_QUEUE: '-1', MODEL: join(dir, 'none') });
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/LOG_LEVEL="loud": allowed values are fatal, error, warn, info, debug, trace, silent/);
    expect(run.stderr).toMatch(/MAX_QUEUE="-1": /);
    expect(run.stdout).toBe('');
  });

  it('CONFIG_FILE supplies settings the environment does not, validated the same way', () => {
    const file = join(dir, 'config.json');
    writeFileSync(file, JSON.stringify({ PORT: 8081, MAX_QUEUE: 4, DENSE_LAYERS: [3, 6], WEBHOOK_INCLUDE_OVERLAY: true, LOG_LEVEL: 'warn' }));
    const s = loadSettings({ CONFIG_FILE: file, LOG_LEVEL: 'debug' });
    expect([s.port, s.maxQueue, s.denseLayers, s.webhookIncludeOverlay]).toEqual([8081, 4, [3, 6], true]);
    expect(s.logLevel).toBe('debug'); // the environment wins
    writeFileSync(file, JSON.stringify({ MAX_QUEUE: 'many' }));
    expect(() => loadSettings({ CONFIG_FILE: file })).toThrow(/MAX_QUEUE="many"/);
    writeFileSync(file, JSON.stringify({ MAX_QEUE: 4 }));
    expect(() => loadSettings({ CONFIG_FILE: file })).toThrow(/MAX_QEUE: not a setting \(allowed: .*MAX_QUEUE/);
    writeFileSync(file, '{ "PORT": ');
    expect(() => loadSettings({ CONFIG_FILE: file })).toThrow(/CONFIG_FILE=.*cannot be read as JSON/);
    expect(() => loadSettings({ CONFIG_FILE: join(dir, 'missing.json') })).toThrow(/CONFIG_FILE=/);
  });
});

/** The demo server as a child process, its JSON log lines collected as they come. */
class DemoServer {
  readonly lines: any[] = [];
  readonly child: ChildProcessWithoutNullStreams;
  readonly exited: Promise<number | null>;

  constructor(env: Record<string, string>) {
    this.child = spawn(process.execPath, ['--import', 'tsx', 'scripts/demo.ts'], { cwd: ROOT, env: { ...baseEnv(), ...env } });
    let rest = '';
    this.child.stdout.on('data', (chunk: Buffer) => {
      const text = rest + chunk.toString('utf8');
      const parts = text.split('\n');
      rest = parts.pop()!;
      for (const line of parts) if (line.trim()) this.lines.push(JSON.parse(line));
    });
    this.child.stderr.resume();
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }

  async waitFor(test: (line: any) => boolean, timeoutMs = 60_000): Promise<any> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.lines.find(test);
      if (found) return found;
      if (Date.now() > deadline || this.child.exitCode !== null) throw new Error(`log line not seen; got ${JSON.stringify(this.lines.map((l) => l.msg))}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

function refusesConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

/**
 * The demo server, ready, with a slow detection in flight (four overlays of a 4-megapixel image
 * take a second or two): what a shutdown test sends SIGTERM into.
 */
async function serverWithSlowRequest(env: Record<string, string> = {}) {
  const server = new DemoServer({
    DEMO_MODEL_DIR: join(dir, 'tiny'),
    MODEL_CACHE_DIR: join(dir, 'cache'),
    HOST: '127.0.0.1',
    PORT: '0',
    // The request's arrival ('incoming request') is a debug line; the access line comes at its end.
    LOG_LEVEL: 'debug',
    WINCLIP: '0',
    ...env,
  });
  const listening = await server.waitFor((l) => /^Server listening at/.test(l.msg));
  const base = /(http:\/\/127\.0\.0\.1:\d+)/.exec(listening.msg)![1];
  await server.waitFor((l) => l.msg === 'model loaded; ready');
  const big = await sharp({ create: { width: 2000, height: 2000, channels: 3, background: '#777777' } }).jpeg().toBuffer();
  const slow = fetch(`${base}/v1/detect?category=bottle&map=overlay&branches=true`, {
    method: 'POST',
    headers: { 'content-type': 'image/jpeg' },
    body: new Uint8Array(big),
  });
  const incoming = await server.waitFor((l) => l.msg === 'incoming request' && l.url?.startsWith('/v1/detect'));
  return { server, port: Number(new URL(base).port), slow, incoming };
}

describe('graceful shutdown', () => {
  it('on SIGTERM: stops accepting, finishes the request in flight with 200, closes the workers, exits 0', async () => {
    const { server, port, slow, incoming } = await serverWithSlowRequest();
    try {
      server.child.kill('SIGTERM');
      await server.waitFor((l) => l.msg?.startsWith('shutting down'));
      expect(await refusesConnections(port)).toBe(true);

      const res = await slow;
      expect(res.status).toBe(200);
      expect((await res.json()).image).toEqual({ width: 2000, height: 2000 });
      expect(await server.exited).toBe(0);

      const msgs = server.lines.map((l) => l.msg);
      const completed = server.lines.findIndex((l) => l.msg === 'request completed' && l.reqId === incoming.reqId);
      // The request was still running when the shutdown began, and finished before the exit.
      expect(msgs.findIndex((m) => m?.startsWith('shutting down'))).toBeLessThan(completed);
      expect(msgs.indexOf('shut down cleanly')).toBeGreaterThan(completed);
      expect(server.lines.filter((l) => l.level >= 50)).toEqual([]);
    } finally {
      server.child.kill('SIGKILL');
    }
  });

  it('past SHUTDOWN_TIMEOUT_MS it exits 1 with the request unfinished, saying so at error level', async () => {
    const { server, slow } = await serverWithSlowRequest({ SHUTDOWN_TIMEOUT_MS: '1' });
    try {
      const outcome = slow.then(
        (res) => res.status,
        () => 'connection closed',
      );
      server.child.kill('SIGTERM');
      expect(await server.exited).toBe(1);
      expect(server.lines.some((l) => l.level >= 50 && l.msg === 'shutdown deadline passed; exiting with requests unfinished')).toBe(true);
      expect(server.lines.some((l) => l.msg === 'shut down cleanly')).toBe(false);
      expect(await outcome).toBe('connection closed');
    } finally {
      server.child.kill('SIGKILL');
    }
  });
});
