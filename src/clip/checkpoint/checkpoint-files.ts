// Which files make a CLIP checkpoint, in the order they are looked for; shared by local folders
// and Hub repos so both accept the same layouts (Hugging Face transformers and open_clip).
import path from 'node:path';

export const CONFIG_FILES = ['config.json', 'open_clip_config.json'] as const;

export const WEIGHTS_INDEX_FILE = 'model.safetensors.index.json';
/** transformers' index of a sharded PyTorch checkpoint (same JSON form). */
export const BIN_WEIGHTS_INDEX_FILE = 'pytorch_model.bin.index.json';

/** Whether a weights file is an index naming shard files. */
export function isWeightsIndex(file: string): boolean {
  return file === WEIGHTS_INDEX_FILE || file === BIN_WEIGHTS_INDEX_FILE;
}
/** Safetensors first (no code, fast to open); PyTorch's pickled zips through torch-checkpoint.ts. */
export const WEIGHTS_FILES = [
  'model.safetensors',
  WEIGHTS_INDEX_FILE,
  'open_clip_model.safetensors',
  'open_clip_pytorch_model.safetensors',
  'pytorch_model.bin',
  BIN_WEIGHTS_INDEX_FILE,
  'open_clip_pytorch_model.bin',
] as const;

/** Tokenizer and preprocessing files; open_clip repos lack them and built-in defaults apply. */
export const OPTIONAL_FILES = [
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'preprocessor_config.json',
] as const;

/** The files error messages tell people to fetch by hand for a usual transformers repo. */
export const ESSENTIAL_FILES = ['config.json', 'model.safetensors', 'tokenizer.json', 'preprocessor_config.json'] as const;

/** Weights in a format this service cannot read, named in errors so people know why. */
export const UNSUPPORTED_WEIGHTS_FILES = ['model.onnx', 'tf_model.h5', 'flax_model.msgpack'] as const;

/** What the errors say can be read. */
export const READABLE_WEIGHTS = 'safetensors files and PyTorch zip checkpoints (.bin)';

/** The first candidate that exists, in order. */
export async function firstExisting(
  candidates: readonly string[],
  exists: (file: string) => boolean | Promise<boolean>,
): Promise<string | undefined> {
  for (const file of candidates) if (await exists(file)) return file;
  return undefined;
}

/** The shard files named by a `*.index.json` weights index, in first-mention order. */
export function shardsOfIndex(indexText: string, indexFile: string = WEIGHTS_INDEX_FILE): string[] {
  let index: unknown;
  try {
    index = JSON.parse(indexText);
  } catch (err) {
    throw new Error(`${indexFile} is not valid JSON (${(err as Error).message})`);
  }
  const weightMap = (index as { weight_map?: unknown } | null)?.weight_map;
  if (!weightMap || typeof weightMap !== 'object') throw new Error(`${indexFile} has no weight_map`);
  const shards = [...new Set(Object.values(weightMap as Record<string, unknown>))];
  for (const shard of shards) {
    // The names become paths on disk and in URLs: refuse anything that could leave the folder.
    if (typeof shard !== 'string' || !isSafeRelativePath(shard)) {
      throw new Error(`${indexFile} names an invalid shard file: ${JSON.stringify(shard)}`);
    }
  }
  if (shards.length === 0) throw new Error(`${indexFile} names no shard files`);
  return shards as string[];
}

export function isSafeRelativePath(file: string): boolean {
  if (file === '' || path.isAbsolute(file) || file.includes('\\') || file.includes('\0')) return false;
  return file.split('/').every((part) => part !== '' && part !== '.' && part !== '..');
}
