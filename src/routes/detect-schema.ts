// Validation of /v1/detect's options, the same for multipart fields and query parameters.
import { z } from 'zod';
import type { DetectOptions, MapKind, PromptChoice } from '../detection/types.ts';
import { BUILT_IN_METHODS } from '../methods/registry.ts';

const BUILT_IN_METHOD_NAMES = BUILT_IN_METHODS.flatMap((m) => [m.name, ...(m.aliases ?? [])]);

export const LIMITS = {
  categoryLength: 100,
  promptCount: 32,
  promptLength: 200,
  /** Normal reference images (file fields `reference`) for few-shot WinCLIP+. */
  references: 8,
  metadataKeys: 16,
  metadataBytes: 1024,
};

// Letters (with their combining marks: Hindi, Thai, decomposed accents) and digits of any
// script, spaces and a little punctuation: enough for "ball screw", "PCB-4", "o'ring", "पेंच";
// nothing that could break a prompt template. Text is NFKC-normalised first, so composed and
// decomposed "café" and fullwidth "ｍｅｔａｌ" are the same category as "café" and "metal".
export const CATEGORY_CHARS = /^[\p{L}\p{N}][\p{L}\p{M}\p{N} _\-'.,()&+/]*$/u;

/** The one normalisation of category text and ids: NFKC, trimmed, inner white space as one space. */
export function normalizeCategory(text: string): string {
  return text.normalize('NFKC').trim().replace(/\s+/g, ' ');
}

const phrases = z.preprocess(
  (v) => {
    if (v === undefined) return undefined;
    const list = Array.isArray(v) ? v : [v];
    // A single field may also hold a JSON array of phrases.
    if (list.length === 1 && typeof list[0] === 'string' && list[0].trim().startsWith('[')) {
      try {
        return JSON.parse(list[0]);
      } catch {
        return list;
      }
    }
    return list;
  },
  z
    .array(z.string().trim().min(1, 'a phrase is empty').max(LIMITS.promptLength, `a phrase is longer than ${LIMITS.promptLength} characters`))
    .min(1)
    .max(LIMITS.promptCount, `at most ${LIMITS.promptCount} phrases`)
    .optional(),
);

/** Small string → string JSON object a ticketing bot routes and de-duplicates on (station, lot, serial). */
const metadata = z.preprocess(
  (v) => {
    const text = Array.isArray(v) ? (v.length === 1 ? v[0] : v) : v;
    if (typeof text !== 'string') return text;
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  },
  z
    .record(
      z.string().min(1).max(64, 'a metadata key is longer than 64 characters'),
      z.string({ error: 'metadata values must be strings' }).max(256, 'a metadata value is longer than 256 characters'),
      { error: 'metadata must be a JSON object of strings, e.g. {"station":"A3","serial":"123"}' },
    )
    .refine((o) => Object.keys(o).length <= LIMITS.metadataKeys, `metadata holds at most ${LIMITS.metadataKeys} keys`)
    .refine((o) => Buffer.byteLength(JSON.stringify(o)) <= LIMITS.metadataBytes, `metadata is larger than ${LIMITS.metadataBytes} bytes as JSON`)
    .optional(),
);

/** A parameter given once; a repeated one (`?category=a&category=b`) is refused by name. */
/** A parameter that must come once: a repeated one says so ("category is given twice"), not a type error. */
export const single = <T extends z.ZodType>(name: string, schema: T) =>
  z.preprocess((v, ctx) => {
    if (!Array.isArray(v)) return v;
    if (v.length === 1) return v[0];
    ctx.addIssue({ code: 'custom', message: `${name} is given ${v.length === 2 ? 'twice' : `${v.length} times`}; give it once` });
    return z.NEVER;
  }, schema);

// Plain decimals from 0 to 1 only: not "", "0x1", "1e0", " 0.5" or "Infinity", which a
// number coercion would take (or turn into 0).
const DECIMAL_0_TO_1 = /^(0(\.\d+)?|1(\.0+)?|\.\d+)$/;
const threshold = z
  .string()
  .regex(DECIMAL_0_TO_1, 'threshold must be a plain decimal from 0 to 1, e.g. 0.5')
  .transform(Number)
  .optional();

const booleanText = z.preprocess(
  (v) => (typeof v === 'string' ? v.toLowerCase() : v),
  z.union([z.boolean(), z.enum(['true', 'false', '1', '0']).transform((s) => s === 'true' || s === '1')], { error: 'must be true or false (or 1 / 0)' }),
);

// `learned:<name>` names a file in PROMPTS_DIR (src/methods/dense-frequency/learned-prompts.ts); whether it
// exists is the detector's answer (400 with the available names).
const LEARNED_OR_FIXED = /^(templated|custom|learned(:[A-Za-z0-9][A-Za-z0-9._-]{0,63})?)$/;

/** How the answer is sent: JSON with the map inline, the map PNG itself, or JSON with the map as a URL. */
export type ResponseFormat = 'json' | 'png' | 'url';
export const RESPONSE_FORMATS = ['json', 'png', 'url'] as const;

/** The detector's options and, apart from them, how the route answers. */
export interface DetectRequest {
  options: DetectOptions;
  format: ResponseFormat;
}

/** map when the request names none: the overlay for a PNG answer (the image people look at), else the heatmap. */
const defaultMap = (format: ResponseFormat): MapKind => (format === 'png' ? 'overlay' : 'png');

function promptChoice(prompts: string, normal?: string[], abnormal?: string[]): PromptChoice {
  if (prompts === 'custom') return { mode: 'custom', normal: normal!, abnormal: abnormal! };
  if (prompts === 'learned') return { mode: 'learned' };
  if (prompts.startsWith('learned:')) return { mode: 'learned', name: prompts.slice('learned:'.length) };
  return { mode: 'templated' };
}

/**
 * `methods`: the method names and aliases the server accepts (its registry); the method's own
 * cross-field rules are its `validate` (src/methods/contract.ts), checked once by the detector.
 */
export function detectOptionsSchema(defaultThreshold: number, methods: readonly string[] = BUILT_IN_METHOD_NAMES) {
  return z
    .strictObject({
      category: single('category',
        z.preprocess(
          (v) => (typeof v === 'string' ? normalizeCategory(v) : v),
          z
            .string({ error: 'category is required (e.g. category=bottle)' })
            .min(1, 'category is empty')
            .max(LIMITS.categoryLength, `category is longer than ${LIMITS.categoryLength} characters`)
            .regex(CATEGORY_CHARS, 'category may hold letters, digits, spaces and - _ \' . , ( ) & + /'),
        ),
      ),
      prompts: single('prompts',
        z
          .string()
          .trim()
          .regex(LEARNED_OR_FIXED, 'prompts must be templated, custom, learned or learned:<name> (letters, digits, . _ -)')
          .default('templated'),
      ),
      normal: phrases,
      abnormal: phrases,
      // Absent: png, or overlay with format=png (defaultMap).
      map: single('map', z.enum(['none', 'grid', 'png', 'overlay']).optional().meta({ default: 'png' })),
      format: single('format', z.enum(RESPONSE_FORMATS).default('json')),
      // Absent: the stored category's calibrated threshold, else the default (thresholdSource says which).
      threshold: single('threshold', threshold),
      metadata,
      branches: single('branches', booleanText.default(false)),
      method: single('method', z.enum(methods as [string, ...string[]]).optional()),
    })
    .superRefine((o, ctx) => {
      if (o.prompts === 'custom' && (!o.normal || !o.abnormal)) {
        ctx.addIssue({ code: 'custom', path: ['prompts'], message: 'prompts=custom needs both normal and abnormal phrases' });
      }
      if (o.prompts !== 'custom' && (o.normal || o.abnormal)) {
        ctx.addIssue({ code: 'custom', path: ['prompts'], message: 'normal/abnormal phrases are only used with prompts=custom' });
      }
      if (o.format !== 'json' && (o.map === 'none' || o.map === 'grid')) {
        const what = o.format === 'png' ? 'an image answer (format=png or Accept: image/png) is the map PNG itself' : 'format=url sends an image map as a URL';
        ctx.addIssue({ code: 'custom', path: ['format'], message: `${what}, and map=${o.map} has no image: use map=overlay or map=png (or format=json)` });
      }
      if (o.format === 'png' && o.branches) {
        ctx.addIssue({ code: 'custom', path: ['format'], message: 'branches=true needs a JSON answer (format=json or format=url): the PNG answer holds only the fused map' });
      }
    })
    .transform(
      (o): DetectRequest => ({
        format: o.format,
        options: {
          category: o.category,
          prompts: promptChoice(o.prompts, o.normal, o.abnormal),
          map: o.map ?? defaultMap(o.format),
          threshold: o.threshold ?? defaultThreshold,
          thresholdGiven: o.threshold !== undefined,
          metadata: o.metadata ?? {},
          branches: o.branches,
          method: o.method,
        },
      }),
    );
}
