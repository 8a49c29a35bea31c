// Answering a request whose body will not be read (a refusal at the headers or mid-body). The
// connection must close, as the unread body is still on it; but closing a socket with unread
// bytes in its receive buffer sends a TCP reset, and a client still writing its upload often
// loses the answer to that reset (it sees ECONNRESET, not the 503). So the answer is written
// with a FIN after it, the socket stops reading, and it is destroyed a moment later, by when
// the client has read the answer; reading nothing more costs nothing meanwhile. (nginx's
// "lingering close" solves the same problem by reading on; a refused 20 MB upload per second
// per client is what a refusal must not cost here.)
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ServiceError } from '../errors.ts';

/** How long a refused connection stays open, not read, after its answer. */
export const LINGER_MS = 1000;

/** A JSON error answer as raw HTTP/1.1 bytes, `Connection: close`. */
export function rawJsonAnswer(status: number, body: object, headers: Record<string, string> = {}): Buffer {
  const json = JSON.stringify(body);
  const lines = [`HTTP/1.1 ${status} ${STATUS_CODES[status]}`, 'content-type: application/json; charset=utf-8', `content-length: ${Buffer.byteLength(json)}`, 'connection: close'];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n${json}`);
}

/** Writes `answer`, then a FIN; stops reading; destroys the socket after LINGER_MS. */
export function answerAndLinger(socket: Socket, answer: Buffer): void {
  if (socket.destroyed) return;
  socket.pause();
  socket.end(answer);
  const timer = setTimeout(() => socket.destroy(), LINGER_MS);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
}

/**
 * A service error for a request whose body is not read: logged as the request's one line,
 * answered in the usual JSON shape with the error's headers and the request id, and lingered.
 */
export function refuseUnreadBody(request: FastifyRequest, reply: FastifyReply, err: ServiceError): void {
  const socket = request.raw.socket;
  if (reply.sent || reply.raw.headersSent) {
    socket.destroy();
    return;
  }
  request.log.info({ status: err.statusCode, error: err.code, reason: err.message }, 'request rejected');
  reply.hijack();
  // The headers earlier hooks set (CORS, the request id) go along.
  const set: Record<string, string> = {};
  for (const [name, value] of Object.entries(reply.getHeaders())) if (value !== undefined && !/^(content-type|content-length|connection)$/i.test(name)) set[name] = String(value);
  answerAndLinger(socket, rawJsonAnswer(err.statusCode, { error: err.code, message: err.message }, { ...set, ...err.headers, 'x-request-id': request.id }));
}
