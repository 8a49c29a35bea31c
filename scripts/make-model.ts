// Writes a random-weight CLIP checkpoint folder.
// Usage: tsx scripts/make-model.ts --arch <tiny|vit-b-32|vit-b-16|vit-b-16-plus-240|vit-l-14-336>
//        --seed N --out DIR [--layout hf|open_clip] [--dtype f32|f16|bf16] [--synthetic-tokenizer]
//        [--outliers [--outlier-channels 2] [--outlier-factor 30]]  (LayerNorm gain outliers: int8 stress test)

import path from 'node:path';
import { createCli } from './cli.ts';
import { ARCHS, DEFAULT_LAYOUT, generateModel, isArchName } from '../src/dev/random-model.ts';
import type { FloatDtype } from '../src/clip/weights/safetensors-writer.ts';

const USAGE =
  'usage: npm run make-model -- --arch <' + Object.keys(ARCHS).join('|') + '> --seed N --out DIR ' +
  '[--layout hf|open_clip] [--dtype f32|f16|bf16] [--synthetic-tokenizer] [--outliers [--outlier-channels N] [--outlier-factor F]]';

const cli = createCli('make-model', USAGE, `\n${USAGE}`);
// Annotated, so TypeScript knows a call never returns.
const fail: (message: string) => never = cli.fail;

function megabytes(bytes: number): string {
  return `${(bytes / 1e6).toFixed(bytes < 1e6 ? 3 : 1)} MB`;
}

const values = cli.parse(process.argv.slice(2), {
  arch: { type: 'string' },
  seed: { type: 'string' },
  out: { type: 'string' },
  layout: { type: 'string' },
  dtype: { type: 'string', default: 'f32' },
  'synthetic-tokenizer': { type: 'boolean', default: false },
  outliers: { type: 'boolean', default: false },
  'outlier-channels': { type: 'string', default: '2' },
  'outlier-factor': { type: 'string', default: '30' },
});
const arch = values.arch ?? fail('--arch is required');
if (!isArchName(arch)) fail(`unknown arch "${arch}"`);
const seedText = values.seed ?? fail('--seed is required');
if (!/^-?\d+$/.test(seedText) || !Number.isSafeInteger(Number(seedText))) fail(`--seed must be an integer (at most 2^53 − 1 either way), got "${seedText}"`);
const out = values.out ?? fail('--out is required');
cli.writableFolder('out', out);
const layout = values.layout ?? DEFAULT_LAYOUT[arch];
if (layout !== 'hf' && layout !== 'open_clip') fail(`--layout must be hf or open_clip, got "${layout}"`);
const dtype = values.dtype.toUpperCase();
if (dtype !== 'F32' && dtype !== 'F16' && dtype !== 'BF16') fail(`--dtype must be f32, f16 or bf16, got "${values.dtype}"`);

// --outliers: 2 channels of every block's LayerNorm gains ×30 unless told otherwise.
let outliers: { channels: number; factor: number } | undefined;
if (values.outliers) {
  const channels = Number(values['outlier-channels']);
  const factor = Number(values['outlier-factor']);
  if (!Number.isInteger(channels) || channels < 1) fail(`--outlier-channels must be a whole number ≥ 1, got "${values['outlier-channels']}"`);
  if (!Number.isFinite(factor) || factor <= 0) fail(`--outlier-factor must be a positive number, got "${values['outlier-factor']}"`);
  outliers = { channels, factor };
}

const started = Date.now();
let result: ReturnType<typeof generateModel>;
try {
  result = generateModel({
    arch,
    seed: Number(seedText),
    out,
    layout,
    dtype: dtype as FloatDtype,
    tokenizer: values['synthetic-tokenizer'] ? 'synthetic' : 'auto',
    outliers,
  });
} catch (err) {
  // A refusal (a folder holding a real model's config) or a write that failed: one line, not a stack.
  console.error(`make-model: ${(err as Error).message}`);
  process.exit(1);
}
const outlierNote = outliers ? `, LayerNorm outliers ${outliers.channels}x${outliers.factor}` : '';
console.log(`wrote ${arch} (seed ${seedText}, ${layout} layout, ${dtype}, ${result.tokenizer} tokenizer${outlierNote}) to ${result.outDir}`);
for (const f of result.files) console.log(`  ${path.basename(f.file).padEnd(32)} ${megabytes(f.bytes).padStart(12)}`);
console.log(`  total ${megabytes(result.totalBytes)} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
console.log('  note: random weights, not a trained model (config marks it generated_random_model)');
