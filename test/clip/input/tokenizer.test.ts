import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AutoTokenizer } from '@huggingface/transformers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSyntheticTokenizer, generateModel, TINY_VOCAB } from '../../../src/dev/random-model.ts';
import { eotPositions, loadClipTokenizer, trimToPooling, type ClipTokenizer } from '../../../src/clip/input/tokenizer.ts';

const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));
const reference = path.resolve(repoRoot, '../shared/clip-reference');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-tokenizer-test-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const row = (ids: BigInt64Array, r: number, width = 77) => Array.from(ids.subarray(r * width, (r + 1) * width), Number);
const LONG = Array.from({ length: 120 }, (_, i) => `word${i % 10} photo`).join(' ');

describe.skipIf(!fs.existsSync(reference))('real CLIP tokenizer files', () => {
  for (const name of ['openai-clip-vit-base-patch32', 'openai-clip-vit-large-patch14']) {
    it(`${name}: known answer, padded with <|endoftext|>`, async () => {
      const tok = await loadClipTokenizer(path.join(reference, name));
      expect(tok).toMatchObject({ contextLength: 77, eotId: 49407, bosId: 49406, padId: 49407, vocabSize: 49408 });
      const ids = tok.encode(['a photo of a red circle']);
      expect(ids).toHaveLength(77);
      const r = row(ids, 0);
      expect(r.slice(0, 8)).toEqual([49406, 320, 1125, 539, 320, 736, 7117, 49407]);
      expect(r.slice(8).every((x) => x === 49407)).toBe(true);
      expect(Array.from(eotPositions(ids, 1))).toEqual([7]);
    });
  }

  it('truncates long text to 77 tokens keeping the EOT last', async () => {
    const tok = await loadClipTokenizer(path.join(reference, 'openai-clip-vit-base-patch32'));
    const ids = tok.encode([LONG, 'a photo of a red circle']);
    const r = row(ids, 0);
    expect(r[0]).toBe(49406);
    expect(r[76]).toBe(49407);
    expect(r.slice(1, 76).includes(49407)).toBe(false);
    expect(Array.from(eotPositions(ids, 2))).toEqual([76, 7]);
  });
});

describe('synthetic tokenizer of the tiny model', () => {
  const folder = path.join(tmp, 'tiny');
  let tok: ClipTokenizer;
  beforeAll(async () => {
    generateModel({ arch: 'tiny', seed: 1, out: folder });
    tok = await loadClipTokenizer(folder);
  });

  it('has CLIP form: EOT the highest id, BOS below it, 77 positions', () => {
    expect(tok).toMatchObject({ contextLength: 77, eotId: TINY_VOCAB - 1, bosId: TINY_VOCAB - 2, padId: TINY_VOCAB - 1, vocabSize: TINY_VOCAB });
  });

  it('round-trips common and unusual text with no unknown tokens', async () => {
    const hf = await AutoTokenizer.from_pretrained(folder, { local_files_only: true });
    const texts = [
      'a photo of the damaged metal plate for visual inspection.',
      'a close-up photo of a flawless bottle without defect',
      'a blurry photo of the object with damage',
      'a photo of a red circle',
      'zebra quokka xylophone, 1234 — déjà vu 日本語 🙂',
    ];
    const ids = tok.encode(texts);
    for (let r = 0; r < texts.length; r++) {
      const ri = row(ids, r);
      const end = ri.indexOf(tok.eotId);
      expect(ri[0]).toBe(tok.bosId);
      const body = ri.slice(1, end);
      // Unknown text would map to <|endoftext|> (the unk token); byte symbols make that impossible.
      expect(body.every((x) => x >= 0 && x < tok.bosId)).toBe(true);
      // CLIP decoding re-spaces punctuation ("close - up"), so compare without whitespace.
      const squash = (x: string) => x.replace(/\s+/g, '');
      expect(squash(hf.decode(body))).toBe(squash(texts[r].toLowerCase()));
    }
    // Common words compress below one token per character.
    expect(row(ids, 0).indexOf(tok.eotId) - 1).toBeLessThan(texts[0].length / 2);
  });

  it('matches AutoTokenizer.from_pretrained on the same folder', async () => {
    const hf = await AutoTokenizer.from_pretrained(folder, { local_files_only: true });
    const text = 'a bright photo of a cracked hazelnut';
    const want = (hf([text], { return_tensor: false }) as unknown as { input_ids: number[][] }).input_ids[0];
    expect(row(tok.encode([text]), 0).slice(0, want.length)).toEqual(want);
  });

  it('pads every row to 77 and truncates long text keeping EOT last', () => {
    const ids = tok.encode(['', 'photo', LONG]);
    expect(ids).toHaveLength(3 * 77);
    expect(row(ids, 0).slice(0, 3)).toEqual([tok.bosId, tok.eotId, tok.padId]);
    expect(row(ids, 2)[76]).toBe(tok.eotId);
    expect(row(ids, 2).slice(0, 76).includes(tok.eotId)).toBe(false);
    expect(Array.from(eotPositions(ids, 3))).toEqual([1, row(ids, 1).indexOf(tok.eotId), 76]);
    expect(tok.encode([])).toHaveLength(0);
  });

  it('honours a context length override', async () => {
    const short = await loadClipTokenizer(folder, { contextLength: 8 });
    const ids = short.encode(['a photo of the damaged metal plate for visual inspection']);
    expect(ids).toHaveLength(8);
    expect(Number(ids[7])).toBe(short.eotId);
  });
});

describe('loading errors', () => {
  it('names a missing tokenizer.json', async () => {
    const empty = path.join(tmp, 'empty');
    fs.mkdirSync(empty);
    await expect(loadClipTokenizer(empty)).rejects.toThrow(`${path.join(empty, 'tokenizer.json')}: missing`);
  });

  it('refuses a vocabulary whose EOT is not the highest id', async () => {
    const d = path.join(tmp, 'bad-eot');
    fs.mkdirSync(d);
    const files = buildSyntheticTokenizer(600) as Record<string, any>;
    const tj = files['tokenizer.json'];
    tj.model.vocab['zzzextra'] = 600; // a regular token above <|endoftext|>
    fs.writeFileSync(path.join(d, 'tokenizer.json'), JSON.stringify(tj));
    fs.writeFileSync(path.join(d, 'tokenizer_config.json'), JSON.stringify(files['tokenizer_config.json']));
    await expect(loadClipTokenizer(d)).rejects.toThrow(/end-of-text id 599 is not the highest id \(600\)/);
  });
});

describe('eotPositions', () => {
  it('finds the first highest id, whether padding is 0 (OpenAI) or EOT (HF)', () => {
    const openai = BigInt64Array.from([5n, 7n, 9n, 0n, 0n, 5n, 9n, 0n, 0n, 0n]);
    expect(Array.from(eotPositions(openai, 2))).toEqual([2, 1]);
    const hfStyle = BigInt64Array.from([5n, 7n, 9n, 9n, 9n, 5n, 9n, 9n, 9n, 9n]);
    expect(Array.from(eotPositions(hfStyle, 2))).toEqual([2, 1]);
    expect(() => eotPositions(openai, 3)).toThrow(/do not split into 3 rows/);
  });
});

describe('trimToPooling', () => {
  it('keeps the columns up to the last pooling position of the batch, row by row', () => {
    const ids = BigInt64Array.from([5n, 7n, 9n, 0n, 0n, 5n, 9n, 0n, 0n, 0n]);
    const { ids: cut, length } = trimToPooling(ids, 2);
    expect(length).toBe(3);
    expect(Array.from(cut)).toEqual([5n, 7n, 9n, 5n, 9n, 0n]);
    // Nothing to cut: the same array back.
    const full = BigInt64Array.from([5n, 9n, 5n, 9n]);
    expect(trimToPooling(full, 2).ids).toBe(full);
    expect(trimToPooling(new BigInt64Array(0), 0).length).toBe(0);
  });
});
