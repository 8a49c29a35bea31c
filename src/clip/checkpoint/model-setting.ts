// Reads a model setting: a local checkpoint folder, or a Hugging Face repo id `owner/name`
// with an optional `@revision`.
import { statSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { DEFAULT_MODEL } from '../../defaults.ts';
import { CheckpointError } from './checkpoint-error.ts';

export { DEFAULT_MODEL };
export const DEFAULT_REVISION = 'main';

export type ModelSetting =
  | { kind: 'local'; folder: string }
  | { kind: 'hub'; repo: string; owner: string; name: string; revision: string };

// The Hub's own rule for owner and repo names: letters, digits, '-', '_', '.'.
const REPO_ID = /^([A-Za-z0-9][\w.-]*)\/([A-Za-z0-9][\w.-]*)(?:@(.+))?$/;

/**
 * A path (absolute, or starting with `.`, `/` or `~`) or an existing directory is a local
 * folder; otherwise `owner/name[@revision]` is a repo id. An empty setting means the default.
 */
export function parseModelSetting(setting: string, cwd: string = process.cwd()): ModelSetting {
  const text = setting.trim() || DEFAULT_MODEL;

  if (text === '~' || text.startsWith('~/')) return { kind: 'local', folder: path.join(homedir(), text.slice(1)) };
  if (path.isAbsolute(text) || text.startsWith('.') || text.startsWith('/')) {
    return { kind: 'local', folder: path.resolve(cwd, text) };
  }
  const asPath = path.resolve(cwd, text);
  if (isDirectory(asPath)) return { kind: 'local', folder: asPath };

  const match = REPO_ID.exec(text);
  if (match) {
    const [, owner, name, revision] = match as unknown as [string, string, string, string | undefined];
    return { kind: 'hub', repo: `${owner}/${name}`, owner, name, revision: revision || DEFAULT_REVISION };
  }
  // More than one '/' cannot be a repo id, so it was meant as a folder: let the folder check
  // explain that it does not exist.
  if (/[\\/]/.test(text)) return { kind: 'local', folder: asPath };

  throw new CheckpointError(
    'invalid-setting',
    `Model "${text}" is neither a folder (nothing at ${asPath}) nor a Hugging Face repo id ` +
      `(owner/name or owner/name@revision, e.g. ${DEFAULT_MODEL}).`,
    asPath,
  );
}

function isDirectory(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}
