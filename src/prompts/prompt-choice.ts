// How a request picks its prompts; methods decide what each choice means for them.

/** `learned`: a prompt file from PROMPTS_DIR (methods/dense-frequency/learned-prompts.ts); no name = the default file. */
export type PromptChoice =
  | { mode: 'templated' }
  | { mode: 'custom'; normal: string[]; abnormal: string[] }
  | { mode: 'learned'; name?: string };
