// Slow and stalled clients through a real socket: a body that stops arriving gets 408 JSON
// within BODY_IDLE_TIMEOUT_MS (raw and multipart), one that trickles past BODY_TIMEOUT_MS too,
// the socket is closed, and the server keeps serving. With the inference queue full, POST
// /v1/detect is refused with 503 before its body is read.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.ts';
import type { Detector } from '../../src/detection/types.ts';

let full = false;
let detections = 0;
const detector: Detector = {
  ready: true,
  info: () => ({ id: 'stub' }) as never,
  detect: async () => {
    detections += 1;
    return { category: 'bottle', score: 0 } as never;
  },
  admissionFull: () => full,
  close: async () => {},
};

let app: FastifyInstance;
let port: number;

beforeAll(async () => {
  app = await buildApp({ detector, defaultThreshold: 0.5, maxBodyBytes: 1 << 20, logLevel: 'silent', bodyTimeouts: { idleMs: 300, totalMs: 1500 }, headersTimeoutMs: 1000 });
  await app.listen({ host: '127.0.0.1', port: 0 });
  port = (app.server.address() as { port: number }).port;
});
afterAll(async () => {
  await app?.close();
});

interface RawAnswer {
  status: number;
  headers: string;
  body: any;
  ms: number;
  closed: boolean;
}

/**
 * Sends `head` and the first chunks, then `trickle` more chunks at `everyMs` (none by default),
 * and reads the answer until the server closes the socket (or 5 s pass).
 */
function sendStalled(head: string, first: Buffer | string, opts: { trickle?: number; everyMs?: number } = {}): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const socket = connect(port, '127.0.0.1');
    let data = '';
    let timer: NodeJS.Timeout | undefined;
    const give = setTimeout(() => finish(false), 5000);
    const finish = (closed: boolean) => {
      clearTimeout(give);
      clearInterval(timer);
      socket.destroy();
      const [headers, body = ''] = data.split('\r\n\r\n');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(headers)?.[1] ?? 0);
      let json: unknown = body;
      try {
        json = JSON.parse(body);
      } catch {
        /* not JSON */
      }
      resolve({ status, headers, body: json, ms: performance.now() - started, closed });
    };
    socket.on('error', reject);
    socket.on('data', (d) => (data += d.toString('utf8')));
    socket.on('end', () => finish(true));
    socket.on('connect', () => {
      socket.write(head);
      socket.write(first);
      let left = opts.trickle ?? 0;
      if (left > 0) {
        timer = setInterval(() => {
          if (left-- > 0 && !socket.destroyed) socket.write('x');
        }, opts.everyMs ?? 100);
      }
    });
  });
}

const rawHead = (length: number) =>
  `POST /v1/detect?category=bottle HTTP/1.1\r\nHost: localhost\r\nContent-Type: image/png\r\nContent-Length: ${length}\r\n\r\n`;

async function stillServing() {
  const res = await fetch(`http://127.0.0.1:${port}/healthz`);
  expect(res.status).toBe(200);
}

describe('stalled headers', () => {
  it('headers that stop before their end: 408 request_timeout JSON within HEADERS_TIMEOUT_MS (Node alone: 60 s), socket closed', async () => {
    const a = await sendStalled('POST /v1/detect?category=bottle HTTP/1.1\r\nHost: localhost\r\n', 'Content-Type: ima');
    expect(a.status).toBe(408);
    // Node 20 reports it as ERR_HTTP_REQUEST_TIMEOUT, checked once a second.
    expect(a.body).toEqual({ error: 'request_timeout', message: expect.stringMatching(/did not arrive in time/) });
    expect(a.closed).toBe(true);
    expect(a.ms).toBeGreaterThan(900);
    expect(a.ms).toBeLessThan(3000);
    await stillServing();
  });
});

describe('stalled uploads', () => {
  it('a raw body that stops: 408 request_timeout JSON within the idle bound, socket closed, server serving', async () => {
    const a = await sendStalled(rawHead(100_000), Buffer.alloc(1000, 1));
    expect(a.status).toBe(408);
    expect(a.body).toEqual({ error: 'request_timeout', message: expect.stringMatching(/no progress for 300 ms \(1000 bytes received\)/) });
    expect(a.closed).toBe(true);
    expect(a.ms).toBeGreaterThan(250);
    expect(a.ms).toBeLessThan(1500);
    await stillServing();
  });

  it('a multipart body that stops halfway through the image: 408 as well', async () => {
    const boundary = 'XyZ';
    const start = `--${boundary}\r\nContent-Disposition: form-data; name="category"\r\n\r\nbottle\r\n--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n`;
    const head = `POST /v1/detect HTTP/1.1\r\nHost: localhost\r\nContent-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: 50000\r\n\r\n`;
    const a = await sendStalled(head, start + 'x'.repeat(500));
    expect(a.status).toBe(408);
    expect(a.body).toMatchObject({ error: 'request_timeout' });
    expect(a.closed).toBe(true);
    expect(a.ms).toBeLessThan(1500);
    await stillServing();
  });

  it('headers then no body at all: 408', async () => {
    const a = await sendStalled(rawHead(10), '');
    expect(a.status).toBe(408);
    expect(a.closed).toBe(true);
  });

  it('a body trickled a byte at a time is cut at BODY_TIMEOUT_MS', async () => {
    const a = await sendStalled(rawHead(100_000), 'x', { trickle: 40, everyMs: 100 });
    expect(a.status).toBe(408);
    expect(a.body.message).toMatch(/did not arrive within 1500 ms/);
    expect(a.ms).toBeGreaterThan(1400);
    expect(a.ms).toBeLessThan(3000);
    await stillServing();
  });

  it('a body that arrives in time is untouched', async () => {
    const res = await fetch(`http://127.0.0.1:${port}/v1/detect?category=bottle`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: 'not a png' });
    expect(res.status).toBe(415); // read in full, then judged: no 408
  });
});

describe('admission before the body is read', () => {
  it('queue full: a slow body gets 503 overloaded with Retry-After at once, nothing is detected', async () => {
    full = true;
    try {
      const before = detections;
      const a = await sendStalled(rawHead(100_000), Buffer.alloc(100, 1));
      expect(a.status).toBe(503);
      expect(a.headers).toMatch(/retry-after: \d+/i);
      expect(a.body).toEqual({ error: 'overloaded', message: expect.stringMatching(/busy/) });
      expect(a.ms).toBeLessThan(250); // not waiting for the body, nor for the idle bound
      expect(detections).toBe(before);
      const burst = await Promise.all(
        Array.from({ length: 10 }, () => fetch(`http://127.0.0.1:${port}/v1/detect?category=bottle`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: Buffer.alloc(10_000) })),
      );
      expect(burst.map((r) => r.status)).toEqual(Array(10).fill(503));
    } finally {
      full = false;
    }
    await stillServing();
  });
});
