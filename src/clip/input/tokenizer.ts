// CLIP text tokenization into the fixed [n, contextLength] int64 input_ids the text graph takes.
//
// Padding: we pad with the tokenizer's own pad token, which for CLIP tokenizers is
// <|endoftext|> (the highest id), as Hugging Face's CLIPTokenizer does. OpenAI's clip.tokenize
// pads with 0 instead. Either way the end-of-text token is the FIRST position holding the highest
// id in the row, and that is the pooling rule the text graph and eotPositions() use; with HF-style
// padding a plain argmax that returned the LAST maximum would pool on padding, so "first" matters.

import fs from 'node:fs';
import path from 'node:path';
import { CLIPTokenizer, PreTrainedTokenizer } from '@huggingface/transformers';

export interface ClipTokenizer {
  /** Token ids, row-major [texts.length, contextLength]: BOS, text, EOT, then padding. */
  encode(texts: string[]): BigInt64Array;
  /** Tokens of one text as the text tower would read it untruncated: BOS, text, EOT. */
  count(text: string): number;
  contextLength: number;
  /** <|endoftext|>: the highest id of the vocabulary. */
  eotId: number;
  bosId: number;
  padId: number;
  vocabSize: number;
}

export interface TokenizerOptions {
  /** Defaults to tokenizer_config.json's model_max_length, else 77. */
  contextLength?: number;
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file}: cannot read tokenizer file (${(e as Error).message})`);
  }
}

/**
 * Loads tokenizer.json (+ tokenizer_config.json) from a folder with @huggingface/transformers.
 * The files are read here and handed to the tokenizer class directly, rather than through
 * AutoTokenizer.from_pretrained, whose hub resolution treats relative paths like "models/x" as
 * Hub model ids and memoises file lookups for the life of the process.
 */
export async function loadClipTokenizer(folder: string, options: TokenizerOptions = {}): Promise<ClipTokenizer> {
  const dir = path.resolve(folder);
  const tokenizerFile = path.join(dir, 'tokenizer.json');
  const configFile = path.join(dir, 'tokenizer_config.json');
  if (!fs.existsSync(tokenizerFile)) throw new Error(`${tokenizerFile}: missing (a CLIP tokenizer.json is required)`);
  const tokenizerJson = readJson(tokenizerFile);
  const tokenizerConfig = (fs.existsSync(configFile) ? readJson(configFile) : {}) as Record<string, unknown>;

  const className = String(tokenizerConfig.tokenizer_class ?? '').replace(/Fast$/, '');
  const tok: PreTrainedTokenizer =
    className === 'CLIPTokenizer' ? new CLIPTokenizer(tokenizerJson, tokenizerConfig) : new PreTrainedTokenizer(tokenizerJson, tokenizerConfig);

  const vocab = tok.get_vocab();
  let maxId = -1;
  for (const id of vocab.values()) maxId = Math.max(maxId, id);
  const eotId = tok.eos_token_id ?? vocab.get('<|endoftext|>');
  const bosId = tok.bos_token_id ?? vocab.get('<|startoftext|>');
  if (eotId === undefined || bosId === undefined) {
    throw new Error(`${tokenizerFile}: no <|startoftext|>/<|endoftext|> tokens; not a CLIP tokenizer`);
  }
  if (eotId !== maxId) {
    // Pooling finds the EOT as the highest id; a vocabulary where it is not would pool wrongly.
    throw new Error(`${tokenizerFile}: end-of-text id ${eotId} is not the highest id (${maxId}); not a CLIP-form vocabulary`);
  }
  const padId = tok.pad_token_id ?? eotId;

  const configured = tokenizerConfig.model_max_length;
  const contextLength =
    options.contextLength ?? (typeof configured === 'number' && configured > 2 && configured <= 4096 ? configured : 77);

  const encode = (texts: string[]): BigInt64Array => {
    const out = new BigInt64Array(texts.length * contextLength);
    if (texts.length === 0) return out;
    const { input_ids } = tok(texts, { add_special_tokens: true, padding: false, truncation: false, return_tensor: false }) as {
      input_ids: number[][];
    };
    input_ids.forEach((raw, row) => {
      let ids = raw;
      if (ids[0] !== bosId) ids = [bosId, ...ids];
      if (ids[ids.length - 1] !== eotId) ids = [...ids, eotId];
      // Truncate as OpenAI's clip.tokenize(truncate=True): keep the head, end with EOT.
      if (ids.length > contextLength) {
        ids = ids.slice(0, contextLength);
        ids[contextLength - 1] = eotId;
      }
      const base = row * contextLength;
      for (let i = 0; i < contextLength; i++) out[base + i] = BigInt(i < ids.length ? ids[i] : padId);
    });
    return out;
  };

  const count = (text: string): number => {
    const { input_ids } = tok([text], { add_special_tokens: true, padding: false, truncation: false, return_tensor: false }) as { input_ids: number[][] };
    const ids = input_ids[0];
    return ids.length + (ids[0] !== bosId ? 1 : 0) + (ids[ids.length - 1] !== eotId ? 1 : 0);
  };

  return { encode, count, contextLength, eotId, bosId, padId, vocabSize: maxId + 1 };
}

/**
 * Per row of `ids` ([n, L] row-major), the first position holding the row's highest id: where the
 * text transformer pools (the EOT token for CLIP vocabularies, whatever the padding).
 */
export function eotPositions(ids: BigInt64Array, n: number): Int32Array {
  if (n === 0 && ids.length === 0) return new Int32Array(0);
  if (n <= 0 || ids.length % n !== 0) throw new Error(`eotPositions: ${ids.length} ids do not split into ${n} rows`);
  const width = ids.length / n;
  const positions = new Int32Array(n);
  for (let r = 0; r < n; r++) {
    let best = 0;
    for (let i = 1; i < width; i++) if (ids[r * width + i] > ids[r * width + best]) best = i;
    positions[r] = best;
  }
  return positions;
}

/**
 * `ids` ([n, L] row-major) cut to the columns up to the batch's last pooling position. The text
 * tower is causal and pools there, so the cut rows give the same embeddings at a fraction of
 * the cost (CLIP prompts fill ~15 of 77 positions).
 */
export function trimToPooling(ids: BigInt64Array, n: number): { ids: BigInt64Array; length: number } {
  if (n === 0) return { ids, length: 0 };
  const width = ids.length / n;
  const length = Math.max(...eotPositions(ids, n)) + 1;
  if (length === width) return { ids, length };
  const out = new BigInt64Array(n * length);
  for (let r = 0; r < n; r++) out.set(ids.subarray(r * width, r * width + length), r * length);
  return { ids: out, length };
}
