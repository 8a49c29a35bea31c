// `npm run demo`: generates the tiny random-weight model (once) and serves it. Every response
// then says the model is untrained: the scores show the plumbing works, not accuracy.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { generateModel } from '../src/dev/random-model.ts';

if (process.argv.includes('--help') || process.argv.includes('-h')) {
  // Before anything is generated: --help has no side effects.
  process.stdout.write(
    'usage: npm run demo\n\nGenerates a tiny model with random weights into DEMO_MODEL_DIR (default models/demo-tiny) once,\n' +
      'then serves it as npm start would (its categories and records in DATA_DIR, default models/data).\n' +
      'The scores show the service works, not whether a part is defective. Settings: npm start -- --help.\n',
  );
  process.exit(0);
}
const folder = resolve(process.env.DEMO_MODEL_DIR ?? 'models/demo-tiny');
if (!existsSync(resolve(folder, 'config.json'))) {
  process.stderr.write(`generating the tiny random model into ${folder}\n`);
  await generateModel({ arch: 'tiny', seed: 1, out: folder });
}
process.env.MODEL = folder;
process.env.MODEL_CACHE_DIR ??= resolve('models/cache');
process.env.HF_HUB_OFFLINE ??= '1';
// Categories, references and detection records of the demo stay beside its model; the review
// flow (a false alarm added to the references) needs the detection images kept.
process.env.DATA_DIR ??= resolve('models/data');
process.env.KEEP_DETECTION_IMAGES ??= '1';
await import('../src/server.ts');
