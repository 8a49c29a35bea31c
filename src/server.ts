// Service entry point: settings from the environment, HTTP server, model loading, shutdown.
import { appOptionsFromSettings, buildApp } from './app.ts';
import { loadSettings, settingsHelp, SettingsError } from './settings.ts';
import { readApiKeys } from './auth/api-keys.ts';
import { createClipDetector } from './detection/clip-detector.ts';
import { DeferredDetector } from './detection/deferred-detector.ts';
import { CategoryProvider } from './categories/provider.ts';
import { CategoryService, categoryServiceOptions, connectingSettingsStore } from './categories/service.ts';
import { messageLog } from './observability/logger.ts';
import { writeFailureFields } from './util/atomic-write.ts';

const USAGE = `Zero-shot visual anomaly detection service (CLIP).

Usage: npm start            (or: node --import tsx src/server.ts)
       npm start -- --help

`;

/** Runs a configuration step; a wrong setting ends the process with its message, before any work. */
function configure<T>(step: () => T): T {
  try {
    return step();
  } catch (err) {
    if (err instanceof SettingsError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(USAGE + settingsHelp());
    return;
  }
  // Every setting is an environment variable: an argument is a mistake (a flag meant for another tool).
  if (args.length) {
    process.stderr.write(`unknown argument${args.length > 1 ? 's' : ''} ${args.join(' ')}: the server takes its settings from the environment (npm start -- --help lists them)\n`);
    process.exit(2);
  }
  const settings = configure(() => loadSettings());
  const apiKeys = configure(() => readApiKeys(settings));
  // Start-up and cache messages go through the service's JSON logger; those from before it
  // exists (the model starts loading first) wait for it.
  let logger: ((msg: string, fields?: Record<string, unknown>) => void) | undefined;
  const early: Array<[string, Record<string, unknown> | undefined]> = [];
  const log = (msg: string, fields?: Record<string, unknown>) => (logger ? logger(msg, fields) : void early.push([msg, fields]));
  // Opened in the background with retries: a database that is down at start-up leaves the
  // server up (zero-shot detections answered, /readyz 503 until the store is reached).
  const store = connectingSettingsStore(settings);
  // With PostgreSQL, class text embeddings are shared through the store (read, else computed and written).
  const loading = createClipDetector(settings, log, undefined, store.backend === 'postgres' ? store : undefined);
  const detector = new DeferredDetector(loading);
  const services = loading.then((d) => new CategoryService(store, d, categoryServiceOptions(settings)));
  const categories = new CategoryProvider(services);
  const app = await buildApp({ ...appOptionsFromSettings(settings, detector, apiKeys), categories, store });
  logger = messageLog(app.log);
  for (const [msg, fields] of early.splice(0)) log(msg, fields);
  store.connect(app.log, { maxDelayMs: settings.storeRetryMaxMs }).then(
    () => services.then((s) => s.keepRetention(undefined, (err) => app.log.warn({ err }, 'pruning detection records failed')), () => {}),
    async (err: Error) => {
      if (stopping) return;
      // A store that will not open (schema newer than this build, refused credentials, …) is configuration to fix.
      app.log.fatal({ err }, `start-up failed: the store cannot be opened: ${err.message}`);
      process.stderr.write(`\nstart-up failed: the store cannot be opened: ${err.message}\n`);
      await app.close().catch(() => undefined);
      process.exit(1);
    },
  );

  // Graceful shutdown: stop accepting at once (the listening socket closes; requests on open
  // keep-alive connections get 503), let in-flight requests finish, give open webhook attempts a few seconds (the rest stay in the outbox), close the
  // workers, exit 0. Past SHUTDOWN_TIMEOUT_MS the process exits 1 with requests unfinished.
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    app.log.info({ signal, timeoutMs: settings.shutdownTimeoutMs }, 'shutting down: no new connections; finishing in-flight requests');
    if (settings.shutdownTimeoutMs > 0) {
      setTimeout(() => {
        app.log.error('shutdown deadline passed; exiting with requests unfinished');
        process.exit(1);
      }, settings.shutdownTimeoutMs).unref();
    }
    await app.close();
    await detector.close();
    (await services.catch(() => undefined))?.close();
    await store.close();
    app.log.info('shut down cleanly');
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
    app.log.fatal({ ...writeFailureFields(err) }, `start-up failed: ${(err as Error).message}`);
    // And once in plain words on stderr, for the person at the terminal.
    process.stderr.write(`\nstart-up failed: ${(err as Error).message}\n`);
    await app.close();
    process.exit(1);
  }
}

void main();
