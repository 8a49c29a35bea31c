// The layering of src/, checked by `npm run lint:deps` (dependency-cruiser) in CI (.ci/run).
// README.md, "Architecture", draws it. Top to bottom, a layer imports only the ones below it:
//
//   server.ts → app.ts → routes/ (auth/, web/ beside them)
//     → categories/ → webhooks/ → detection/ → methods/ → prompts/, scoring/ → clip/
//   store/ (the database) serves routes/, categories/ and webhooks/ and imports only the bottom layer;
//   beside and below everything: imaging/, util/, observability/, errors.ts, defaults.ts;
//   settings.ts (the environment) is read by detection/ and above only.
//   tooling: eval/, folder-scoring/, training/ (above detection/; dataset/ is their MVTec reader) and dev/
//   (random models, for scripts/, bench/ and test/): the service never imports them.
//
// Type-only imports count (tsPreCompilationDeps): a type cycle is a cycle all the same.

/** `^src/(a|b|…)/` or one of the top-level files. */
const folders = (...names) => `^src/(${names.join('|')})/`;
const files = (...names) => `^src/(${names.join('|')})\\.ts$`;
const either = (...patterns) => patterns.join('|');

const ENTRY = files('app', 'server');
const TOOLING = folders('eval', 'folder-scoring', 'training', 'dev', 'dataset');

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'No import cycles (type-only imports included): move what both sides need into a module of its own.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'clip-is-the-model-layer',
      severity: 'error',
      comment: 'src/clip (checkpoint, weights, onnx, runtime, input) knows no method, prompt, scoring, HTTP or tool code, and gets its options passed in (not settings.ts).',
      from: { path: '^src/clip/' },
      to: { path: either(folders('methods', 'detection', 'routes', 'prompts', 'scoring', 'webhooks', 'auth'), TOOLING, ENTRY, files('settings')) },
    },
    {
      name: 'prompts-scoring-below-methods',
      severity: 'error',
      comment: 'src/prompts and src/scoring are building blocks of the methods: they may use src/clip and the bottom modules only.',
      from: { path: folders('prompts', 'scoring') },
      to: { path: either(folders('methods', 'detection', 'routes', 'webhooks', 'auth'), TOOLING, ENTRY, files('settings')) },
    },
    {
      name: 'methods-below-detection',
      severity: 'error',
      comment: 'A method (src/methods, contract.ts + registry.ts) is called by the detector; it does not know the detector, HTTP, the tools or settings.ts.',
      from: { path: '^src/methods/' },
      to: { path: either(folders('detection', 'routes', 'webhooks', 'auth'), TOOLING, ENTRY, files('settings')) },
    },
    {
      name: 'detection-below-routes',
      severity: 'error',
      comment: 'src/detection (decode → method → render → response) does not know HTTP, webhooks or the tools.',
      from: { path: '^src/detection/' },
      to: { path: either(folders('routes', 'webhooks', 'auth'), TOOLING, ENTRY) },
    },
    {
      name: 'nothing-below-routes-imports-routes',
      severity: 'error',
      comment: 'Only app.ts and server.ts (and routes/ itself) import src/routes: errors carry their HTTP status (src/errors.ts), not the routes.',
      from: { path: '^src/', pathNot: either('^src/routes/', ENTRY) },
      to: { path: '^src/routes/' },
    },
    {
      name: 'entry-points-are-not-imported',
      severity: 'error',
      comment: 'app.ts is imported by server.ts only; server.ts by nobody in src.',
      from: { path: '^src/', pathNot: files('server') },
      to: { path: ENTRY },
    },
    {
      name: 'bottom-modules-import-only-each-other',
      severity: 'error',
      comment: 'src/imaging, src/util, src/observability, errors.ts and defaults.ts are the bottom layer: they import nothing else from src.',
      from: { path: either(folders('imaging', 'util', 'observability'), files('errors', 'defaults')) },
      to: { path: '^src/', pathNot: either(folders('imaging', 'util', 'observability'), files('errors', 'defaults')) },
    },
    {
      name: 'settings-reads-only-defaults',
      severity: 'error',
      comment: 'settings.ts takes its shared defaults from defaults.ts and imports nothing else from src, so any layer allowed to read it stays acyclic.',
      from: { path: files('settings') },
      to: { path: '^src/', pathNot: files('defaults') },
    },
    {
      name: 'service-does-not-import-tooling',
      severity: 'error',
      comment: 'The service (everything in src but eval, folder-scoring, training, dev and dataset) never imports the evaluation, folder scoring, training, the dataset reader or the random-model generator.',
      from: { path: '^src/', pathNot: TOOLING },
      to: { path: TOOLING },
    },
    {
      name: 'dev-is-tooling',
      severity: 'error',
      comment: 'src/dev (random models) is for scripts/, bench/ and test/ only: no production module imports it.',
      from: { path: '^src/', pathNot: '^src/dev/' },
      to: { path: '^src/dev/' },
    },
    {
      name: 'no-test-code-in-production',
      severity: 'error',
      comment: 'Production code (src/, scripts/, bench/) never imports test/ (test methods and fixtures live there). scripts/check-test-hooks.mjs checks for test hooks inside src/.',
      from: { path: '^(src|scripts|bench)/' },
      to: { path: '^test/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|\\.test-results|out)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.mjs', '.js', '.cjs'] },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
