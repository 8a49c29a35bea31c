// What resolving a model setting gives: the folder and the files in it. Its own module because
// the resolver (resolve.ts) and both sources (local-checkpoint.ts, hub-checkpoint.ts) use it;
// the sources importing it from resolve.ts made an import cycle.

export interface ResolvedCheckpoint {
  /** Absolute folder holding the checkpoint's files. */
  folder: string;
  source: 'local' | 'hub';
  repo?: string;
  revision?: string;
  /** The commit the revision pointed at when downloaded, when the Hub said. */
  commit?: string;
  /** The config file's name in the folder: config.json or open_clip_config.json. */
  config: string;
  /** The safetensors files holding the tensors: one file, or the shards of an index. */
  weights: string[];
  /** The weights file to open: the single file, or the index naming the shards. */
  weightsFile: string;
  /** Optional files (tokenizer, preprocessor) the checkpoint lacks. */
  missing: string[];
}
