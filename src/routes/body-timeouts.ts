// Bounds on receiving a request body (BODY_IDLE_TIMEOUT_MS, BODY_TIMEOUT_MS): a client that
// stops sending, or trickles a byte now and then, cannot hold a connection and its buffered
// bytes for ever. Raw and multipart bodies alike: the hook watches the request stream itself,
// before any parser reads it. Past a bound the client gets 408 `request_timeout` in the usual
// JSON shape and the socket is closed, so what was buffered is freed.
//
// The watch must not start the stream flowing before a parser is there (chunks would be lost):
// the stream is paused first, so the 'data' listener only sees what the parser later reads
// (Fastify's raw-body reader resumes it; @fastify/multipart pipes it).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

export interface BodyTimeouts {
  /** Longest pause between two chunks of a body; 0 = none. */
  idleMs: number;
  /** Longest time from the request's arrival to the body's last byte; 0 = none. */
  totalMs: number;
}

function hasBody(request: FastifyRequest): boolean {
  const h = request.headers;
  return h['transfer-encoding'] !== undefined || Number(h['content-length'] ?? 0) > 0;
}

export function registerBodyTimeouts(app: FastifyInstance, bounds: BodyTimeouts): void {
  if (!(bounds.idleMs > 0) && !(bounds.totalMs > 0)) return;
  app.addHook('onRequest', async (request, reply) => {
    if (hasBody(request)) watchBody(request, reply, bounds);
  });
}

function watchBody(request: FastifyRequest, reply: FastifyReply, bounds: BodyTimeouts): void {
  const raw = request.raw;
  let idle: NodeJS.Timeout | undefined;
  let total: NodeJS.Timeout | undefined;
  let received = 0;

  const stop = () => {
    clearTimeout(idle);
    clearTimeout(total);
    raw.off('data', onData);
  };
  const cut = (message: string) => {
    stop();
    const socket = raw.socket;
    // Answered already (the route did not need the body): only the connection goes.
    if (reply.raw.headersSent) {
      socket.destroy();
      return;
    }
    request.log.info({ status: 408, error: 'request_timeout', reason: message, receivedBytes: received }, 'request rejected');
    reply.hijack();
    const body = JSON.stringify({ error: 'request_timeout', message });
    reply.raw.writeHead(408, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(body),
      connection: 'close',
      'x-request-id': request.id,
    });
    reply.raw.end(body, () => socket.destroy());
  };
  const armIdle = () => {
    if (!(bounds.idleMs > 0)) return;
    clearTimeout(idle);
    idle = setTimeout(
      () => cut(`The request body made no progress for ${bounds.idleMs} ms (${received} bytes received); send it without pausing.`),
      bounds.idleMs,
    );
  };
  function onData(chunk: Buffer) {
    received += chunk.length;
    armIdle();
  }

  // The idle clock starts now: a client that sends headers and then nothing is cut as well.
  armIdle();
  if (bounds.totalMs > 0) {
    const left = Math.max(1, bounds.totalMs - reply.elapsedTime);
    total = setTimeout(() => cut(`The request body did not arrive within ${bounds.totalMs} ms (${received} bytes received).`), left);
  }
  raw.pause();
  raw.on('data', onData);
  raw.once('end', stop);
  raw.once('close', stop);
  reply.raw.once('finish', stop);
  reply.raw.once('close', stop);
}
