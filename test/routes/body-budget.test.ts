// MAX_BODY_BYTES_IN_FLIGHT: a body reserves its declared length at its headers; one that would
// take the total past the budget gets 503 at once, unread, while small requests still go
// through; the ones admitted and stalled are cut at the idle bound, freeing the budget; a
// chunked body is counted as it arrives and refused mid-body. A real Fastify server on
// 127.0.0.1 with the service's hooks and error handler; the bytes read are counted by listening
// to each body.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Fastify, { type FastifyInstance } from 'fastify';
import net from 'node:net';
import { registerBodyTimeouts } from '../../src/routes/body-timeouts.ts';
import { registerBodyBudget } from '../../src/routes/body-budget.ts';
import { registerErrorHandling } from '../../src/routes/errors.ts';

const MiB = 1024 * 1024;
const BUDGET = 8 * MiB;
const IDLE_MS = 1500;
let app: FastifyInstance;
let port: number;
let readNow = 0; // body bytes read by the server and not yet released
let readMax = 0;

beforeAll(async () => {
  app = Fastify();
  registerErrorHandling(app);
  registerBodyTimeouts(app, { idleMs: IDLE_MS, totalMs: 0 });
  registerBodyBudget(app, BUDGET);
  app.addHook('preParsing', async (request, reply, payload) => {
    let mine = 0;
    payload.on('data', (c: Buffer) => {
      mine += c.length;
      readNow += c.length;
      readMax = Math.max(readMax, readNow);
    });
    reply.raw.once('close', () => {
      readNow -= mine;
      mine = 0;
    });
    return payload;
  });
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer', bodyLimit: 64 * MiB }, (_r, body, done) => done(null, body));
  app.post('/upload', async (request) => ({ bytes: (request.body as Buffer).length }));
  await app.listen({ host: '127.0.0.1', port: 0 });
  port = (app.server.address() as net.AddressInfo).port;
});
afterAll(() => app?.close());

interface Answer {
  status: number;
  body: string;
  /** From the last byte this client wrote to the socket's close. */
  closedAfterLastWriteMs: number;
}

/** Headers declaring `declared` bytes, then `bytes` of them, then nothing; resolves when the server closes it. */
function stalled(declared: number, bytes: number, chunked = false): Promise<Answer> {
  return new Promise((resolve) => {
    let lastWrite = performance.now();
    const socket = net.connect(port, '127.0.0.1', () => {
      const length = chunked ? 'Transfer-Encoding: chunked' : `Content-Length: ${declared}`;
      socket.write(`POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n${length}\r\n\r\n`);
      for (let at = 0; at < bytes; at += 256 * 1024) {
        const n = Math.min(256 * 1024, bytes - at);
        const piece = Buffer.alloc(n, 1);
        socket.write(chunked ? Buffer.concat([Buffer.from(`${n.toString(16)}\r\n`), piece, Buffer.from('\r\n')]) : piece, (err) => {
          if (!err) lastWrite = performance.now();
        });
      }
    });
    let answer = '';
    socket.on('data', (d: Buffer) => (answer += d.toString('latin1')));
    socket.on('error', () => {});
    socket.on('close', () =>
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0), body: answer.split('\r\n\r\n')[1] ?? '', closedAfterLastWriteMs: performance.now() - lastWrite }),
    );
  });
}

const upload = (bytes: number) => fetch(`http://127.0.0.1:${port}/upload`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: new Uint8Array(bytes) });

describe('the body budget', () => {
  it('admits uploads up to the budget, refuses the rest at once unread, lets small requests through, and frees the budget when the stalled ones are cut', async () => {
    // 12 uploads declaring 4 MiB each that send 2 MiB and stop: two fit the 8 MiB budget.
    const cuts: Promise<Answer>[] = [];
    for (let i = 0; i < 12; i++) {
      cuts.push(stalled(4 * MiB, 2 * MiB));
      await new Promise((r) => setTimeout(r, 20));
    }
    await new Promise((r) => setTimeout(r, 300));
    const t = performance.now();
    const small = await upload(1000);
    expect(small.status).toBe(200);
    // Not held back until the stalled ones are cut.
    expect(performance.now() - t).toBeLessThan(IDLE_MS - 300);
    expect(await small.json()).toEqual({ bytes: 1000 });
    const answers = await Promise.all(cuts);
    const refused = answers.filter((a) => a.status === 503);
    const cut = answers.filter((a) => a.status === 408);
    expect(cut.length).toBe(2);
    expect(refused.length).toBe(10);
    for (const r of refused) expect(JSON.parse(r.body)).toEqual({ error: 'overloaded', message: expect.stringMatching(/too many uploads/) });
    // The admitted ones were never paused: cut at the idle bound after their last byte.
    for (const c of cut) {
      expect(c.closedAfterLastWriteMs).toBeGreaterThan(IDLE_MS - 100);
      expect(c.closedAfterLastWriteMs).toBeLessThan(IDLE_MS + 1000);
    }
    // What the server read: the two admitted bodies' 2 MiB each and the small one, not 24 MiB.
    expect(readMax).toBeLessThanOrEqual(BUDGET);
    expect(readNow).toBe(0);
    // The budget is free again: a large upload goes through whole.
    const big = await upload(6 * MiB);
    expect(await big.json()).toEqual({ bytes: 6 * MiB });
  }, 30_000);

  it('reads a body larger than the budget when nothing else is held', async () => {
    const res = await upload(BUDGET + MiB);
    expect(await res.json()).toEqual({ bytes: BUDGET + MiB });
  });

  it('counts a chunked body as it arrives and refuses it mid-body past the budget', async () => {
    const holder = stalled(6 * MiB, MiB); // holds 6 MiB until cut
    await new Promise((r) => setTimeout(r, 200));
    const chunked = await stalled(0, 4 * MiB, true);
    expect(chunked.status).toBe(503);
    expect(JSON.parse(chunked.body)).toMatchObject({ error: 'overloaded' });
    expect((await holder).status).toBe(408);
  }, 15_000);
});
