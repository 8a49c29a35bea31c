// Builds the web page (web/index.html and web/src) into web/dist: `npm run build:web`.
// Everything is bundled: the page loads nothing from outside the server that serves it.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/',
  publicDir: false,
  logLevel: 'warn',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    assetsDir: 'assets',
    target: 'es2022',
    sourcemap: false,
    // Inlined assets would be data: URLs in the CSS; there are none, but keep files as files.
    assetsInlineLimit: 0,
  },
});
