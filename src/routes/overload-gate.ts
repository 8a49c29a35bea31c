// A full inference queue answered before Fastify sees the request. Under overload the refusals
// far outnumber the detections (clients that retry at once send hundreds a second), and each
// one through Fastify (routing, the hooks, the reply) costs the HTTP thread ~10× what this
// does; that thread also decodes and answers the detections that are running, so a cheap
// refusal is what keeps the successful throughput up (issue 13's overload figure).
//
// Only `POST /v1/detect` with nothing Fastify must add is answered here: a request with an
// `Origin` while CORS is on (it needs the CORS headers), or without a valid API key while keys
// are required (it gets 401 from Fastify), goes on to Fastify, whose route hook refuses it the
// same way. The answer, the access line and the request metric are the ones Fastify would give.
//
// The answer waits REFUSAL_DELAY_MS (2 ms): a client that retries at once, ignoring Retry-After,
// otherwise sends refusals as fast as they are answered (7,000/s from 28 such clients here),
// and those cost this thread and the client's the CPU the running detections need; paced, they
// cost a fraction, and the 503 still comes within a few milliseconds. A timer holds nothing but
// the socket.
//
// A small body (≤ 64 KiB, the usual upload of a thumbnail) is read and discarded after the
// answer, so the client's keep-alive connection stays open instead of costing a reconnect per
// refusal; a larger or chunked one is not read: the connection closes (unread-body.ts).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyBaseLogger } from 'fastify';
import type { ApiKeys } from '../auth/api-keys.ts';
import { presentedKey } from '../auth/plugin.ts';
import type { ServiceMetrics } from '../observability/metrics.ts';
import { shortUrl } from '../observability/logger.ts';
import { answerAndLinger, rawJsonAnswer } from './unread-body.ts';
import { queueFullError } from '../errors.ts';

/** Bodies up to this size are drained so the connection is kept. */
export const DRAINED_BODY_MAX_BYTES = 64 * 1024;
/** A drained body not complete this long after the answer closes its connection. */
const DRAIN_MS = 2000;

export interface OverloadGateOptions {
  /** The detector's admission check: true when a detection now would be refused. */
  isFull: () => boolean;
  keys: ApiKeys;
  /** CORS is on: requests with an Origin header go to Fastify. */
  cors: boolean;
  /** The app's request-id rule (the caller's plausible x-request-id, else a fresh one). */
  requestId: (req: IncomingMessage) => string;
  log: () => FastifyBaseLogger;
  metrics: ServiceMetrics;
  /** Pause before the answer (REFUSAL_DELAY_MS); 0 = at once. */
  delayMs?: number;
}

const REFUSAL = queueFullError();
const ANSWER = { error: REFUSAL.code, message: REFUSAL.message };
const BODY = Buffer.from(JSON.stringify(ANSWER));

function isDetect(url: string | undefined): boolean {
  if (!url || !url.startsWith('/v1/detect')) return false;
  return url.length === 10 || url[10] === '?';
}

/** A request listener's first step: true when it answered the request itself. */
export function overloadGate(opts: OverloadGateOptions): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    if (req.method !== 'POST' || !isDetect(req.url) || !opts.isFull()) return false;
    if (opts.cors && req.headers.origin !== undefined) return false;
    if (opts.keys.enabled && !opts.keys.match(presentedKey(req.headers))) return false;
    const started = performance.now();
    const id = opts.requestId(req);
    const length = req.headers['content-length'];
    const drain = req.headers['transfer-encoding'] === undefined && length !== undefined && Number(length) <= DRAINED_BODY_MAX_BYTES;
    if (opts.delayMs) setTimeout(() => answer(req, res, id, drain, started), opts.delayMs);
    else answer(req, res, id, drain, started);
    return true;
  };

  function answer(req: IncomingMessage, res: ServerResponse, id: string, drain: boolean, started: number): void {
    if (req.socket.destroyed) {
      // The client went away during the pause: nothing to write, but the refusal is still logged and counted.
      logged(req, id, started, { clientGone: true });
      return;
    }
    if (!drain) {
      answerAndLinger(req.socket, rawJsonAnswer(REFUSAL.statusCode, ANSWER, { ...REFUSAL.headers, 'x-request-id': id }));
    } else {
      res.writeHead(REFUSAL.statusCode, { 'content-type': 'application/json; charset=utf-8', 'content-length': BODY.length, ...REFUSAL.headers, 'x-request-id': id });
      res.end(BODY);
    }
    if (drain && !req.complete) {
      // Node discards the unread body once the answer is sent; one that does not come goes.
      const timer = setTimeout(() => req.socket.destroy(), DRAIN_MS);
      req.once('end', () => clearTimeout(timer));
      req.once('close', () => clearTimeout(timer));
    }
    logged(req, id, started);
  }

  function logged(req: IncomingMessage, id: string, started: number, extra: { clientGone?: true } = {}): void {
    const seconds = (performance.now() - started) / 1000;
    opts.metrics.observeRequest('POST', '/v1/detect', REFUSAL.statusCode, seconds);
    opts.log().info({ reqId: id, method: 'POST', url: shortUrl(req.url!), status: REFUSAL.statusCode, ms: Math.round(seconds * 1e4) / 10, ...extra }, 'request completed');
  }
}
