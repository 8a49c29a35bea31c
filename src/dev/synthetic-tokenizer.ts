// Synthetic CLIP-form tokenizer: byte-level BPE with `</w>` word ends, every byte symbol in the
// vocabulary (so no text is ever unknown), merges learned from a small English word list, and
// <|startoftext|>, <|endoftext|> as the two highest ids.

const BOS = '<|startoftext|>';
const EOS = '<|endoftext|>';

/** Words the merges are learned from: prompt vocabulary, inspection objects, common English. */
const MERGE_CORPUS = `
a an the of in on at for with without and or to from by is are was be this that it its as
photo photograph picture image close-up cropped bright dark blurry jpeg corrupted small large
big little good bad clean dirty new old normal abnormal anomaly anomalous anomalies detection
visual inspection object objects item surface texture industrial product part parts
flawless perfect unblemished flaw flaws defect defects defective damage damaged broken crack
cracked scratch scratches scratched hole holes dent bent cut contamination stain spot missing
color colour faulty imprint poke squeeze fabric glue print rough misplaced liquid oil thread
metal plate nut screw bottle cable capsule carpet grid hazelnut leather pill tile toothbrush
transistor wood zipper candle cashew chewing gum fryum macaroni pcb pipe
red green blue yellow black white gray grey orange purple pink brown circle square triangle
line shape shapes pattern background foreground left right top bottom center middle edge
one two three four five six seven eight nine ten first second third
i you he she we they me him her us them my your his our their what which who when where why how
not no yes all any some many much more most other such only own same so than too very can will
just should now there here then out up down over under again further once about into through
during before after above below between each few both have has had do does did doing
would could make made see look looking show shows shown taken camera light lighting view front
back side high quality low resolution detail details close far near sharp soft smooth hard
glass plastic paper steel iron copper aluminium aluminum rubber stone concrete ceramic cloth
box bag cup can jar tube wire board chip circuit component device machine tool kit
person people man woman dog cat car house tree water sky road table chair food hand
`;

/** GPT-2/CLIP byte ↔ printable-character table, in the order the real vocabulary lists it. */
export function bytesToUnicode(): string[] {
  const printable: number[] = [];
  for (let b = 33; b <= 126; b++) printable.push(b);
  for (let b = 161; b <= 172; b++) printable.push(b);
  for (let b = 174; b <= 255; b++) printable.push(b);
  const order = printable.slice();
  const chars = printable.map((b) => String.fromCharCode(b));
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    if (!printable.includes(b)) {
      order.push(b);
      chars.push(String.fromCharCode(256 + extra++));
    }
  }
  // chars[i] is the symbol of byte order[i]; the vocabulary lists symbols in this order.
  return chars;
}

/** Learns up to `maxMerges` BPE merges over the corpus words (ties broken by pair text). */
function learnMerges(corpus: string, maxMerges: number): string[][] {
  const counts = new Map<string, number>();
  for (const w of corpus.toLowerCase().match(/\p{L}+/gu) ?? []) counts.set(w, (counts.get(w) ?? 0) + 1);
  // Corpus words are ASCII, so their byte-level symbols are the letters themselves.
  const words = [...counts].map(([w, n]) => {
    const syms = [...w];
    syms[syms.length - 1] += '</w>';
    return { syms, n };
  });
  const merges: string[][] = [];
  while (merges.length < maxMerges) {
    const pairs = new Map<string, number>();
    for (const { syms, n } of words) {
      for (let i = 0; i + 1 < syms.length; i++) {
        const k = `${syms[i]} ${syms[i + 1]}`;
        pairs.set(k, (pairs.get(k) ?? 0) + n);
      }
    }
    let best: string | undefined;
    let bestN = 0;
    for (const [k, n] of pairs) {
      if (n > bestN || (n === bestN && best !== undefined && k < best)) {
        best = k;
        bestN = n;
      }
    }
    if (!best) break; // every word is a single token
    const [a, b] = best.split(' ');
    merges.push([a, b]);
    for (const w of words) {
      const next: string[] = [];
      for (let i = 0; i < w.syms.length; i++) {
        if (i + 1 < w.syms.length && w.syms[i] === a && w.syms[i + 1] === b) {
          next.push(a + b);
          i++;
        } else next.push(w.syms[i]);
      }
      w.syms = next;
    }
  }
  return merges;
}

export interface TokenizerFiles {
  'tokenizer.json': unknown;
  'tokenizer_config.json': unknown;
  'special_tokens_map.json': unknown;
}

const specialToken = (content: string) => ({ content, single_word: false, lstrip: false, rstrip: false, normalized: true });

/**
 * The three tokenizer files of a CLIP-form tokenizer with exactly `vocabSize` ids:
 * 256 byte symbols, their `</w>` forms, learned merges, unreachable filler ids if the corpus
 * runs out of merges, then BOS = vocabSize-2 and EOS = vocabSize-1.
 */
export function buildSyntheticTokenizer(vocabSize: number, contextLength = 77): TokenizerFiles {
  if (vocabSize < 514) throw new Error(`synthetic tokenizer needs at least 514 ids, got ${vocabSize}`);
  const vocab = new Map<string, number>();
  const addToken = (tok: string) => {
    if (!vocab.has(tok)) vocab.set(tok, vocab.size);
  };
  const bytes = bytesToUnicode();
  for (const c of bytes) addToken(c);
  for (const c of bytes) addToken(`${c}</w>`);
  const merges: string[] = [];
  for (const [a, b] of learnMerges(MERGE_CORPUS, vocabSize - 2 - vocab.size)) {
    if (vocab.size >= vocabSize - 2) break;
    merges.push(`${a} ${b}`);
    addToken(a + b);
  }
  // Filler ids keep the embedding table at the size the architecture asks for; BPE never emits them.
  for (let i = 0; vocab.size < vocabSize - 2; i++) addToken(`<|unused_${i}|>`);
  addToken(BOS);
  addToken(EOS);

  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [
      { id: vocabSize - 2, content: BOS, single_word: false, lstrip: false, rstrip: false, normalized: true, special: true },
      { id: vocabSize - 1, content: EOS, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
    ],
    normalizer: {
      type: 'Sequence',
      normalizers: [{ type: 'NFC' }, { type: 'Replace', pattern: { Regex: '\\s+' }, content: ' ' }, { type: 'Lowercase' }],
    },
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        {
          type: 'Split',
          pattern: { Regex: "'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+" },
          behavior: 'Removed',
          invert: true,
        },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true },
      ],
    },
    post_processor: {
      type: 'RobertaProcessing',
      sep: [EOS, vocabSize - 1],
      cls: [BOS, vocabSize - 2],
      trim_offsets: false,
      add_prefix_space: false,
    },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: EOS,
      continuing_subword_prefix: '',
      end_of_word_suffix: '</w>',
      fuse_unk: false,
      vocab: Object.fromEntries(vocab),
      merges,
    },
  };
  const tokenizerConfig = {
    add_prefix_space: false,
    bos_token: { __type: 'AddedToken', ...specialToken(BOS) },
    eos_token: { __type: 'AddedToken', ...specialToken(EOS) },
    unk_token: { __type: 'AddedToken', ...specialToken(EOS) },
    pad_token: EOS,
    clean_up_tokenization_spaces: true,
    do_lower_case: true,
    errors: 'replace',
    model_max_length: contextLength,
    tokenizer_class: 'CLIPTokenizer',
    synthetic_tokenizer: true,
  };
  const specialTokensMap = {
    bos_token: specialToken(BOS),
    eos_token: specialToken(EOS),
    unk_token: specialToken(EOS),
    pad_token: EOS,
  };
  return { 'tokenizer.json': tokenizer, 'tokenizer_config.json': tokenizerConfig, 'special_tokens_map.json': specialTokensMap };
}
