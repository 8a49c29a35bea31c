// A bound on request-body bytes held in memory across all requests (MAX_BODY_BYTES_IN_FLIGHT).
// Bodies are read into memory; a hundred clients that each send 20 MB and stop would hold 2 GB
// until BODY_IDLE_TIMEOUT_MS cuts them. So a body reserves its declared length when its headers
// arrive, and one that would take the total past the budget is refused at once with 503
// `overloaded` and Retry-After (its connection closed, nothing of it read), unless nothing else
// is held (a body larger than the budget is then read alone). A chunked body, whose length is
// unknown, counts what has arrived and is refused the same way when it crosses the budget.
// Bodies of at most SMALL_BODY_BYTES are counted but never refused: the usual thumbnail upload
// goes through while large uploads hold the budget.
//
// Refused rather than paused: a paused body's bytes pile up in the socket buffers, and on resume
// they arrive in a burst that looks like progress, so a stalled client could outlive its idle
// bound by as long as it was paused; a 503 is also clearer to the client than a 408 later.
import type { FastifyInstance, FastifyRequest, FastifyReply } from 'fastify';
import { QueueFullError } from '../errors.ts';
import { refuseUnreadBody } from './unread-body.ts';

/** 32 MiB: room for one upload of MAX_BODY_BYTES (25 MiB) beside a few small ones. */
export const DEFAULT_BODY_BYTES_IN_FLIGHT = 32 * 1024 * 1024;
/** Bodies this small are never refused by the budget. */
export const SMALL_BODY_BYTES = 64 * 1024;

export function registerBodyBudget(app: FastifyInstance, maxBytes: number): void {
  if (!(maxBytes > 0)) return;
  let total = 0; // bytes reserved by the bodies held
  let held = 0; // bodies held

  // The same `overloaded` error (and Retry-After) as a full queue, with its own reason.
  const message = (bytes: number) =>
    `The service is receiving too many uploads at once (${mib(total)} MiB held, ${mib(bytes)} MiB more would pass the ${mib(maxBytes)} MiB bound); retry shortly.`;

  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    const h = request.headers;
    const chunked = h['transfer-encoding'] !== undefined;
    const declared = chunked ? 0 : Number(h['content-length'] ?? 0);
    if (!chunked && !(declared > 0)) return;
    if (declared > SMALL_BODY_BYTES && held > 0 && total + declared > maxBytes) {
      refuseUnreadBody(request, reply, new QueueFullError(message(declared)));
      return;
    }
    let mine = declared;
    total += mine;
    held++;
    let released = false;
    // The body is held until the answer is sent (the route reads it whole).
    const release = () => {
      if (released) return;
      released = true;
      request.raw.off('data', onData);
      total -= mine;
      held--;
    };
    function onData(chunk: Buffer) {
      if (released) return;
      mine += chunk.length;
      total += chunk.length;
      if (mine > SMALL_BODY_BYTES && held > 1 && total > maxBytes) {
        release();
        refuseUnreadBody(request, reply, new QueueFullError(message(chunk.length)));
      }
    }
    if (chunked) {
      // Paused first, as body-timeouts.ts does: a 'data' listener must not start the stream before the parser is there.
      request.raw.pause();
      request.raw.on('data', onData);
    }
    request.raw.once('close', release);
    reply.raw.once('finish', release);
    reply.raw.once('close', release);
  });
}

const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
