// Validation of /v1/detect's options, the same for multipart fields and query parameters.
import { z } from 'zod';
import type { DetectOptions, PromptChoice } from '../detection/types.ts';
import { BUILT_IN_METHODS } from '../methods/registry.ts';

const BUILT_IN_METHOD_NAMES = BUILT_IN_METHODS.flatMap((m) => [m.name, ...(m.aliases ?? [])]);

export const LIMITS = {
  categoryLength: 100,
  promptCount: 32,
  promptLength: 200,
  /** Normal reference images (file fields `reference`) for few-shot WinCLIP+. */
  references: 8,
};

// Letters and digits of any script, spaces and a little punctuation: enough for
// "ball screw", "PCB-4", "o'ring"; nothing that could break a prompt template.
const CATEGORY_CHARS = /^[\p{L}\p{N}][\p{L}\p{N} _\-'.,()&+/]*$/u;

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

const single = <T extends z.ZodType>(schema: T) =>
  z.preprocess((v) => (Array.isArray(v) ? (v.length === 1 ? v[0] : v) : v), schema);

const booleanText = z.preprocess(
  (v) => (typeof v === 'string' ? v.toLowerCase() : v),
  z.union([z.boolean(), z.enum(['true', 'false', '1', '0']).transform((s) => s === 'true' || s === '1')]),
);

// `learned:<name>` names a file in PROMPTS_DIR (src/prompts/learned-prompts.ts); whether it
// exists is the detector's answer (400 with the available names).
const LEARNED_OR_FIXED = /^(templated|custom|learned(:[A-Za-z0-9][A-Za-z0-9._-]{0,63})?)$/;

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
      category: single(
        z
          .string({ error: 'category is required (e.g. category=bottle)' })
          .trim()
          .min(1, 'category is empty')
          .max(LIMITS.categoryLength, `category is longer than ${LIMITS.categoryLength} characters`)
          .regex(CATEGORY_CHARS, 'category may hold letters, digits, spaces and - _ \' . , ( ) & + /'),
      ),
      prompts: single(
        z
          .string()
          .trim()
          .regex(LEARNED_OR_FIXED, 'prompts must be templated, custom, learned or learned:<name> (letters, digits, . _ -)')
          .default('templated'),
      ),
      normal: phrases,
      abnormal: phrases,
      map: single(z.enum(['none', 'grid', 'png', 'overlay']).default('png')),
      threshold: single(z.coerce.number().min(0).max(1).default(defaultThreshold)),
      branches: single(booleanText.default(false)),
      method: single(z.enum(methods as [string, ...string[]]).optional()),
    })
    .superRefine((o, ctx) => {
      if (o.prompts === 'custom' && (!o.normal || !o.abnormal)) {
        ctx.addIssue({ code: 'custom', path: ['prompts'], message: 'prompts=custom needs both normal and abnormal phrases' });
      }
      if (o.prompts !== 'custom' && (o.normal || o.abnormal)) {
        ctx.addIssue({ code: 'custom', path: ['prompts'], message: 'normal/abnormal phrases are only used with prompts=custom' });
      }
    })
    .transform(
      (o): DetectOptions => ({
        category: o.category.replace(/\s+/g, ' '),
        prompts: promptChoice(o.prompts, o.normal, o.abnormal),
        map: o.map,
        threshold: o.threshold,
        branches: o.branches,
        method: o.method,
      }),
    );
}
