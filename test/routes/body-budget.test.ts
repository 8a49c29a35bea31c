// MAX_BODY_BYTES_IN_FLIGHT: stalled uploads cannot make the server hold more than the budget of
// body bytes (the rest waits in socket buffers), a small request still goes through meanwhile,
// and the stalled ones are cut at the idle bound, freeing the budget. A real Fastify server on
// 127.0.0.1 with the service's hooks; the bytes read are counted by listening to each body.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Fastify, { type FastifyInstance } from 'fastify';
import net from 'node:net';
import { registerBodyTimeouts } from '../../src/routes/body-timeouts.ts';
import { registerBodyBudget } from '../../src/routes/body-budget.ts';

const BUDGET = 4 * 1024 * 1024;
let app: FastifyInstance;
let port: number;
let readNow = 0; // body bytes read by the server and not yet released
let readMax = 0;

beforeAll(async () => {
  app = Fastify();
  registerBodyTimeouts(app, { idleMs: 1500, totalMs: 0 });
  registerBodyBudget(app, BUDGET);
  app.addHook('onRequest', async (request, reply) => {
    let mine = 0;
    request.raw.on('data', (c: Buffer) => {
      mine += c.length;
      readNow += c.length;
      readMax = Math.max(readMax, readNow);
    });
    const done = () => {
      readNow -= mine;
      mine = 0;
    };
    reply.raw.once('close', done);
  });
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer', bodyLimit: 64 * 1024 * 1024 }, (_r, body, done) => done(null, body));
  app.post('/upload', async (request) => ({ bytes: (request.body as Buffer).length }));
  await app.listen({ host: '127.0.0.1', port: 0 });
  port = (app.server.address() as net.AddressInfo).port;
});
afterAll(() => app?.close());

/** Headers, then `bytes` of a longer body, then nothing; resolves with the status when the server closes it. */
function stalled(bytes: number): Promise<number> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.write(`POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: ${bytes * 2}\r\n\r\n`);
      socket.write(Buffer.alloc(bytes, 1));
    });
    let answer = '';
    socket.on('data', (d: Buffer) => (answer += d.toString('latin1')));
    socket.on('error', () => {});
    socket.on('close', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0)));
  });
}

describe('the body budget', () => {
  it('holds stalled uploads to the budget, lets a small request through, frees the budget when they are cut', async () => {
    const cuts = Array.from({ length: 12 }, () => stalled(4 * 1024 * 1024)); // 48 MB offered
    await new Promise((r) => setTimeout(r, 600));
    const t = performance.now();
    const small = await fetch(`http://127.0.0.1:${port}/upload`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: new Uint8Array(1000) });
    expect(small.status).toBe(200);
    // Not held back until the stalled ones are cut (1.5 s idle bound).
    expect(performance.now() - t).toBeLessThan(1200);
    expect(await small.json()).toEqual({ bytes: 1000 });
    const statuses = await Promise.all(cuts);
    expect(statuses.every((s) => s === 408)).toBe(true);
    // The budget, plus the oldest body (never paused), plus at most a socket read per paused body.
    expect(readMax).toBeLessThan(BUDGET + 4 * 1024 * 1024 + 12 * 256 * 1024);
    expect(readMax).toBeGreaterThan(BUDGET / 2);
    expect(readNow).toBe(0);
    // The budget is free again: a large upload goes through whole.
    const big = await fetch(`http://127.0.0.1:${port}/upload`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: new Uint8Array(6 * 1024 * 1024) });
    expect(await big.json()).toEqual({ bytes: 6 * 1024 * 1024 });
  }, 30_000);
});
