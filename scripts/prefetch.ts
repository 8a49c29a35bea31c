// `npm run prefetch`: fills MODEL_CACHE_DIR once and exits, for an init container or an image
// build. It starts the detector exactly as the server would (same settings, same code path):
// the checkpoint is resolved (downloaded unless cached or local), every graph the served
// methods need is built, the sessions open and warm up once; then everything is closed again.
// A server started later with the same settings and cache finds all of it on disk.
//
//   npm run prefetch            (reads the same environment variables as npm start)
import { createClipDetector } from '../src/detection/clip-detector.ts';
import { loadSettings, settingsHelp, SettingsError } from '../src/settings.ts';

if (process.argv.includes('--help') || process.argv.includes('-h')) {
  process.stdout.write(`usage: npm run prefetch\n\nResolves MODEL into MODEL_CACHE_DIR and builds its ONNX graphs, then exits 0.\n\n${settingsHelp()}`);
  process.exit(0);
}
const args = process.argv.slice(2);
if (args.length) {
  console.error(`prefetch: unknown argument${args.length > 1 ? 's' : ''} ${args.join(' ')}: it reads the same environment variables as npm start (npm run prefetch -- --help)`);
  process.exit(2);
}

let settings;
try {
  settings = loadSettings();
} catch (err) {
  if (!(err instanceof SettingsError)) throw err;
  process.stderr.write(`${err.message}\n`);
  process.exit(2);
}
const started = performance.now();
const log = (msg: string) => process.stderr.write(`${msg}\n`);
try {
  const detector = await createClipDetector({ ...settings, workers: 1 }, log);
  const { timings } = detector.runtime;
  await detector.close();
  const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  log(
    `prefetch: ${detector.runtime.modelId} ready in ${settings.cacheDir} ` +
      `(resolve ${s(timings.resolveMs)}, graphs ${s(timings.graphMs)}${timings.graphsBuilt ? ' built' : ' cached'}, total ${s(performance.now() - started)})`,
  );
} catch (err) {
  log(`prefetch failed: ${(err as Error).message}`);
  process.exit(1);
}
