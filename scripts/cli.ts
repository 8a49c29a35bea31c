// What the command-line tools (eval, train, make-model) share: strict option parsing with
// -h/--help, one exit-2 message for any bad argument, and the parsers of whole numbers, real
// numbers and `--names category=name,…` maps.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';

type OptionsConfig = NonNullable<ParseArgsConfig['options']>;

export interface Cli {
  /** Prints `<tool>: <message>` and the tool's hint, exits 2. */
  fail(message: string): never;
  /** Parses `argv` strictly against `options` plus -h/--help; --help prints the usage and exits 0. */
  parse<const O extends OptionsConfig>(argv: string[], options: O): ReturnType<typeof parseArgs<{ args: string[]; options: O; strict: true }>>['values'];
  /** `--name` as a whole number ≥ min, or `fallback` when absent. */
  wholeNumber(name: string, text: string | undefined, fallback: number, min: number): number;
  /** `--name` as a finite number passing `ok` (described by `allowed`), or `fallback` when absent. */
  realNumber(name: string, text: string | undefined, fallback: number, ok: (v: number) => boolean, allowed: string): number;
  /** `--names a=A,b=B` flags (repeatable) as one map. */
  names(flags: string[]): Record<string, string>;
  /**
   * Makes `folder` (for `--flag`) and checks a file can be written in it, before any work: an
   * output that cannot be written was found after loading the model (or the whole run), as a
   * stack trace. Fails with exit 2 saying why.
   */
  writableFolder(flag: string, folder: string): void;
}

/** `hint` follows every failure message (where to find the options). */
export function createCli(tool: string, usage: string, hint: string): Cli {
  const fail = (message: string): never => {
    console.error(`${tool}: ${message}${hint}`);
    process.exit(2);
  };
  return {
    fail,
    parse(argv, options) {
      let values: Record<string, unknown>;
      try {
        values = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h', default: false } }, strict: true }).values;
      } catch (e) {
        return fail((e as Error).message);
      }
      if (values.help) {
        console.log(usage);
        process.exit(0);
      }
      delete values.help;
      // The declared type is parseArgs's own for `options`; help is handled here.
      return values as never;
    },
    wholeNumber(name, text, fallback, min) {
      if (text === undefined) return fallback;
      if (!/^\d+$/.test(text) || Number(text) < min) fail(`--${name} must be a whole number ≥ ${min}, got "${text}"`);
      return Number(text);
    },
    realNumber(name, text, fallback, ok, allowed) {
      if (text === undefined) return fallback;
      const v = Number(text);
      if (text.trim() === '' || !Number.isFinite(v) || !ok(v)) fail(`--${name} must be ${allowed}, got "${text}"`);
      return v;
    },
    writableFolder(flag, folder) {
      try {
        mkdirSync(folder, { recursive: true });
        const probe = join(folder, `.write-test-${process.pid}`);
        writeFileSync(probe, '');
        rmSync(probe);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        const why = code === 'EROFS' ? 'the file system is read-only' : code === 'EACCES' || code === 'EPERM' ? 'permission denied' : code === 'ENOTDIR' || code === 'EEXIST' ? 'a file is in the way' : (e as Error).message;
        fail(`cannot write --${flag} ${folder}: ${why}`);
      }
    },
    names(flags) {
      const names: Record<string, string> = {};
      for (const flag of flags) {
        for (const pair of flag.split(',')) {
          const eq = pair.indexOf('=');
          if (eq <= 0 || eq === pair.length - 1) fail(`--names ${flag}: expected category=name[,category=name…]`);
          names[pair.slice(0, eq).trim()] = pair.slice(eq + 1).trim();
        }
      }
      return names;
    },
  };
}
