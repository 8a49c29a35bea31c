// A bound on request-body bytes held in memory across all requests (MAX_BODY_BYTES_IN_FLIGHT).
// Bodies are read into memory; a hundred clients that each send 20 MB and stop would hold 2 GB
// until BODY_IDLE_TIMEOUT_MS cuts them, and take the CPU from everyone else meanwhile. Past the
// budget, a body's stream is paused (the bytes wait in the kernel's socket buffer and the
// sender's, not here) until others finish; the oldest body being received is never paused, so
// one always progresses (at most the budget plus that body are held). A paused body makes no progress, so a stalled client is still cut at
// its idle bound; bodies of one chunk (most uploads under 64 kB) are read whole before any pause.
import type { FastifyInstance, FastifyRequest, FastifyReply } from 'fastify';

/** 32 MiB: with the oldest body (≤ MAX_BODY_BYTES, 25 MiB) at most ~57 MiB of bodies held. */
export const DEFAULT_BODY_BYTES_IN_FLIGHT = 32 * 1024 * 1024;

interface Held {
  bytes: number;
  paused: boolean;
  raw: FastifyRequest['raw'];
}

export function registerBodyBudget(app: FastifyInstance, maxBytes: number): void {
  if (!(maxBytes > 0)) return;
  const held = new Set<Held>(); // insertion order: the oldest first
  let total = 0;

  /** The oldest body goes on whatever the total; the others while the total is under the budget. */
  const resumeWaiting = () => {
    let i = 0;
    for (const h of held) {
      if (i++ > 0 && total > maxBytes) break;
      if (h.paused) {
        h.paused = false;
        h.raw.resume();
      }
    }
  };

  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    const h = request.headers;
    if (h['transfer-encoding'] === undefined && !(Number(h['content-length'] ?? 0) > 0)) return;
    const declared = h['transfer-encoding'] === undefined ? Number(h['content-length']) : Infinity;
    const entry: Held = { bytes: 0, paused: false, raw: request.raw };
    held.add(entry);
    const onData = (chunk: Buffer) => {
      entry.bytes += chunk.length;
      total += chunk.length;
      const oldest = held.values().next().value === entry;
      // A body that has arrived whole is not paused: its bytes are in already, and a paused
      // stream would hold back its end (small uploads would wait for the stalled ones).
      if (total > maxBytes && !oldest && !entry.paused && entry.bytes < declared) {
        entry.paused = true;
        request.raw.pause();
      }
    };
    let released = false;
    // The body is held until the answer is sent (the route reads it whole).
    const release = () => {
      if (released) return;
      released = true;
      request.raw.off('data', onData);
      held.delete(entry);
      total -= entry.bytes;
      resumeWaiting();
    };
    // Paused first, as body-timeouts.ts does: a 'data' listener must not start the stream before the parser is there.
    request.raw.pause();
    request.raw.on('data', onData);
    request.raw.once('close', release);
    reply.raw.once('finish', release);
    reply.raw.once('close', release);
  });
}
