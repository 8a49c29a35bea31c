// The web page for people at `/`: the Vite build in web/dist (npm run build:web), served from
// the package with no CDN, so it works offline. `/` is index.html and `/assets/*` the hashed
// bundles; both are public routes (src/auth/public-routes.ts): the page is no secret, and its
// API calls carry the key the person enters. When the build is missing at start-up, both
// answer a 503 page that says how to build it.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';
import fastifyStatic from '@fastify/static';

export const DEFAULT_WEB_ROOT = fileURLToPath(new URL('../../web/dist', import.meta.url));

export interface WebOptions {
  /** Folder of the built page (index.html and assets/); default web/dist of this package. */
  root?: string;
}

// Everything the page loads comes from this server; images it draws are data: or blob: URLs.
const CSP = [
  "default-src 'self'",
  "img-src 'self' data: blob:",
  "style-src 'self'",
  "script-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

const NOT_BUILT = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Web page not built</title></head>
<body style="font: 16px/1.5 system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; padding: 0 1rem">
<h1>The web page has not been built</h1>
<p>This server has no <code>web/dist</code> folder. Build the page, then restart the server:</p>
<pre style="background:#f2f2f2; padding: .75rem">npm run build:web</pre>
<p>(<code>npm ci</code> builds it too, when the dev dependencies are installed.)
The API itself works: see <a href="/docs">/docs</a>.</p>
</body></html>
`;

export async function webPlugin(app: FastifyInstance, opts: WebOptions): Promise<void> {
  const root = opts.root ?? DEFAULT_WEB_ROOT;
  const index = join(root, 'index.html');
  const hide = { schema: { hide: true } };

  if (!existsSync(index)) {
    app.log.warn({ root }, 'web page not built: / answers 503 (run npm run build:web)');
    const notBuilt = async (_request: unknown, reply: FastifyReply) =>
      reply.code(503).type('text/html; charset=utf-8').header('cache-control', 'no-store').send(NOT_BUILT);
    app.get('/', hide, notBuilt);
    app.get('/assets/*', hide, notBuilt);
    return;
  }

  // Hashed file names: a new build gets new names, so the bundles may be cached for good.
  await app.register(fastifyStatic, {
    root: join(root, 'assets'),
    prefix: '/assets/',
    decorateReply: false,
    index: false,
    immutable: true,
    maxAge: '365d',
  });
  // Read per request (it is small): a rebuild's new bundle names show without a restart.
  app.get('/', hide, async (_request, reply) =>
    reply
      .type('text/html; charset=utf-8')
      .header('cache-control', 'no-cache')
      .header('content-security-policy', CSP)
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .send(await readFile(index)),
  );
}
