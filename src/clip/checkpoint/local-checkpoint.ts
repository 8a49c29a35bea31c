// Checks a local checkpoint folder: it exists and holds a config and safetensors weights
// (with all shards when the weights are indexed). Tokenizer and preprocessor files are optional.
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { CheckpointError } from './checkpoint-error.ts';
import {
  CONFIG_FILES,
  ESSENTIAL_FILES,
  firstExisting,
  OPTIONAL_FILES,
  shardsOfIndex,
  READABLE_WEIGHTS,
  UNSUPPORTED_WEIGHTS_FILES,
  WEIGHTS_FILES,
  isWeightsIndex,
} from './checkpoint-files.ts';
import { DEFAULT_MODEL } from './model-setting.ts';
import type { ResolvedCheckpoint } from './resolved.ts';

export async function resolveLocalCheckpoint(
  folder: string,
  model: string,
  settingName: string,
): Promise<ResolvedCheckpoint> {
  const remedy =
    `Put the checkpoint's files (${ESSENTIAL_FILES.join(', ')}) there, or set ${settingName} to a ` +
    `Hugging Face repo id such as ${DEFAULT_MODEL}.`;

  let isFolder: boolean;
  try {
    isFolder = (await stat(folder)).isDirectory();
  } catch {
    throw new CheckpointError(
      'local-missing',
      `Model folder ${folder} does not exist (${settingName}=${model}). Set ${settingName} to a folder that ` +
        `holds the checkpoint's files (${ESSENTIAL_FILES.join(', ')}), or to a Hugging Face repo id such as ${DEFAULT_MODEL}.`,
      folder,
    );
  }
  if (!isFolder) {
    throw new CheckpointError(
      'local-missing',
      `Model path ${folder} is a file, not a folder (${settingName}=${model}). Set ${settingName} to the folder ` +
        `that holds the checkpoint's files (${ESSENTIAL_FILES.join(', ')}).`,
      folder,
    );
  }

  const has = (file: string) => existsSync(path.join(folder, file));

  const config = await firstExisting(CONFIG_FILES, has);
  if (!config) {
    throw new CheckpointError(
      'local-incomplete',
      `Model folder ${folder} has no config: looked for ${CONFIG_FILES.join(', ')}. ${remedy}`,
      folder,
    );
  }

  const weightsFile = await firstExisting(WEIGHTS_FILES, has);
  if (!weightsFile) {
    const unsupported = UNSUPPORTED_WEIGHTS_FILES.filter(has);
    const note = unsupported.length
      ? ` It has ${unsupported.join(', ')}, but only ${READABLE_WEIGHTS} can be read.`
      : '';
    throw new CheckpointError(
      'local-incomplete',
      `Model folder ${folder} has no weights: looked for ${WEIGHTS_FILES.join(', ')}.${note} ${remedy}`,
      folder,
    );
  }

  let weights = [weightsFile];
  if (isWeightsIndex(weightsFile)) {
    try {
      weights = shardsOfIndex(await readFile(path.join(folder, weightsFile), 'utf8'), weightsFile);
    } catch (err) {
      throw new CheckpointError('local-incomplete', `Model folder ${folder}: ${(err as Error).message}.`, folder, { cause: err });
    }
    const absent = weights.filter((shard) => !has(shard));
    if (absent.length) {
      throw new CheckpointError(
        'local-incomplete',
        `Model folder ${folder} has ${weightsFile} but not its shards ${absent.join(', ')}. ` +
          `Copy all the shard files it names into the folder.`,
        folder,
      );
    }
  }

  return {
    folder,
    source: 'local',
    config,
    weights,
    weightsFile,
    missing: OPTIONAL_FILES.filter((file) => !has(file)),
  };
}
