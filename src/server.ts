// Service entry point: settings from the environment, HTTP server, model loading, shutdown.
import { buildApp } from './app.ts';
import { loadSettings, settingsHelp, SettingsError, type Settings } from './settings.ts';
import { createClipDetector } from './detection/clip-detector.ts';
import { DeferredDetector } from './detection/deferred-detector.ts';

const USAGE = `Zero-shot visual anomaly detection service (CLIP).

Usage: npm start            (or: node --import tsx src/server.ts)
       npm start -- --help

`;

function readSettings(): Settings {
  try {
    return loadSettings();
  } catch (err) {
    if (err instanceof SettingsError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}

async function main(): Promise<void> {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    process.stdout.write(USAGE + settingsHelp());
    return;
  }
  const settings = readSettings();
  const loading = createClipDetector(settings, (msg) => process.stderr.write(`${msg}\n`));
  const detector = new DeferredDetector(loading);
  const app = await buildApp({
    detector,
    defaultThreshold: settings.threshold,
    maxBodyBytes: settings.maxBodyBytes,
    logLevel: settings.logLevel,
  });

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    app.log.info({ signal }, 'shutting down: finishing in-flight requests');
    const deadline = setTimeout(() => {
      app.log.warn('shutdown deadline passed; exiting');
      process.exit(1);
    }, 30_000);
    deadline.unref();
    await app.close();
    await detector.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));

  await app.listen({ host: settings.host, port: settings.port });
  try {
    await loading;
    app.log.info({ model: detector.info().id }, 'model loaded; ready');
  } catch (err) {
    // One clear message, then a non-zero exit: a service without a model is no service.
    process.stderr.write(`\nstart-up failed: ${(err as Error).message}\n`);
    await app.close();
    process.exit(1);
  }
}

void main();
