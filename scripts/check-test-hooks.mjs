// Fails when production code (src/) contains a test hook: an identifier or message meant only
// for tests (`…ForTest`, `hang-for-test`, `crash-on-next-task`, a `process.env.VITEST` branch…).
// Tests reach real behaviour through the public API or test/support/, never through switches
// in src. The patterns and the hooks known to be on their way out are in scripts/test-hooks.json
// (or the file given as the first argument).
// Usage: node scripts/check-test-hooks.mjs [config.json]   — exit 1 on a hook, 0 otherwise.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..');
const configFile = process.argv[2] ?? join(root, 'scripts', 'test-hooks.json');
const config = JSON.parse(readFileSync(configFile, 'utf8'));
const forbidden = config.forbidden.map((source) => ({ source, regex: new RegExp(source) }));
const pending = config.pending ?? [];

function* sourceFiles(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* sourceFiles(path);
    else if (/\.(ts|mts|cts|js|mjs|cjs)$/.test(entry.name)) yield path;
  }
}

const found = [];
const allowed = [];
const pendingSeen = new Set();
for (const file of sourceFiles(join(root, 'src'))) {
  const rel = relative(root, file).split('\\').join('/');
  readFileSync(file, 'utf8')
    .split('\n')
    .forEach((line, i) => {
      for (const { source, regex } of forbidden) {
        if (!regex.test(line)) continue;
        const hit = `${rel}:${i + 1}: ${line.trim()}  (${source})`;
        const known = pending.findIndex((p) => p.file === rel && p.pattern === source);
        if (known >= 0) {
          pendingSeen.add(known);
          allowed.push(`${hit} — pending: ${pending[known].why}`);
        } else found.push(hit);
      }
    });
}

for (const line of allowed) console.log(`check-test-hooks: known, not failing: ${line}`);
pending.forEach((p, i) => {
  if (!pendingSeen.has(i)) console.log(`check-test-hooks: ${p.file} no longer has ${p.pattern}: drop it from the pending list of ${relative(root, configFile)}`);
});
if (found.length) {
  for (const line of found) console.error(`check-test-hooks: test hook in production code: ${line}`);
  console.error(`check-test-hooks: FAILED, ${found.length} test hook(s) in src/ (tests must use the public API or test/support/)`);
  process.exit(1);
}
console.log(`check-test-hooks: ok, no test hook in src/${allowed.length ? ` (${allowed.length} known one(s) pending removal)` : ''}`);
