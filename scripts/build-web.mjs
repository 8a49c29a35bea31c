// Builds the web page into web/dist (npm run build:web; `prepare` runs it on npm ci / install).
// An install without dev dependencies (npm ci --omit=dev) has no Vite: then it says so and
// exits 0, and the server answers / with a page telling to run npm run build:web.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const config = fileURLToPath(new URL('../web/vite.config.ts', import.meta.url));
const optional = process.argv.includes('--if-possible');

if (!existsSync(config)) {
  console.warn('build-web: no web/ folder here; the web page is not built');
  process.exit(optional ? 0 : 1);
}
let vite;
try {
  vite = await import('vite');
} catch {
  console.warn('build-web: Vite is not installed (dev dependencies omitted?); the web page is not built. Run npm install, then npm run build:web.');
  process.exit(optional ? 0 : 1);
}
const started = Date.now();
await vite.build({ configFile: config, logLevel: 'warn' });
console.log(`build-web: web/dist built in ${Date.now() - started} ms`);
