// A refusal of a body that is not read reaches a client that is still writing it: the answer,
// a FIN, and the socket closed only after LINGER_MS, so no TCP reset overtakes the answer.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Fastify, { type FastifyInstance } from 'fastify';
import net from 'node:net';
import { LINGER_MS, refuseUnreadBody } from '../../src/routes/unread-body.ts';
import { QueueFullError } from '../../src/errors.ts';

let app: FastifyInstance;
let port: number;

beforeAll(async () => {
  app = Fastify();
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-hook', 'set-before');
    refuseUnreadBody(request, reply, new QueueFullError('busy, come back'));
  });
  app.post('/upload', async () => ({ read: true }));
  await app.listen({ host: '127.0.0.1', port: 0 });
  port = (app.server.address() as net.AddressInfo).port;
});
afterAll(() => app?.close());

/** Headers, then 16 MiB written as fast as the socket takes it; the raw answer and whether a reset came instead. */
function upload(): Promise<{ answer: string; error?: string; closedMs: number }> {
  return new Promise((resolve) => {
    const started = performance.now();
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.write(`POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: ${16 << 20}\r\n\r\n`);
      for (let i = 0; i < 64; i++) socket.write(Buffer.alloc(256 * 1024, 3), () => {});
    });
    let answer = '';
    let error: string | undefined;
    socket.on('data', (d: Buffer) => (answer += d.toString('latin1')));
    socket.on('error', (err: NodeJS.ErrnoException) => (error = err.code));
    socket.on('close', () => resolve({ answer, error, closedMs: performance.now() - started }));
  });
}

describe('refuseUnreadBody', () => {
  it('the client writing 16 MiB reads the 503, with the earlier hooks’ headers, every time', async () => {
    for (let i = 0; i < 4; i++) {
      const r = await upload();
      expect(r.answer).toMatch(/^HTTP\/1\.1 503 Service Unavailable\r\n/);
      expect(r.answer).toMatch(/\r\nretry-after: 1\r\n/);
      expect(r.answer).toMatch(/\r\nx-hook: set-before\r\n/);
      expect(r.answer).toMatch(/\r\nconnection: close\r\n/);
      expect(JSON.parse(r.answer.split('\r\n\r\n')[1])).toEqual({ error: 'overloaded', message: 'busy, come back' });
      expect(r.closedMs).toBeLessThan(LINGER_MS + 1500);
    }
  }, 20_000);
});
