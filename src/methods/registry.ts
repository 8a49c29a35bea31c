// The scoring methods a server can offer, found by name or alias. Adding a method: a folder
// under src/methods with a module exporting its ScoringMethod, and one line in BUILT_IN_METHODS.
import { BadRequestError } from '../errors.ts';
import type { ScoringMethod } from './contract.ts';
import { denseFrequency } from './dense-frequency/method.ts';
import { winclip } from './winclip/method.ts';
import { musc } from './musc/method.ts';

export const BUILT_IN_METHODS: readonly ScoringMethod[] = [denseFrequency, winclip, musc];

/** The method used when a request names none. */
export const DEFAULT_METHOD = denseFrequency.name;

export class MethodRegistry {
  private readonly byName = new Map<string, ScoringMethod>();
  private readonly list: ScoringMethod[] = [];

  constructor(methods: readonly ScoringMethod[] = BUILT_IN_METHODS) {
    for (const m of methods) this.register(m);
  }

  register(method: ScoringMethod): void {
    for (const name of [method.name, ...(method.aliases ?? [])]) {
      if (this.byName.has(name)) throw new Error(`method name "${name}" is registered twice`);
      this.byName.set(name, method);
    }
    this.list.push(method);
  }

  /** The methods, in registration order. */
  all(): readonly ScoringMethod[] {
    return this.list;
  }

  /** Canonical names, in order. */
  names(): string[] {
    return this.list.map((m) => m.name);
  }

  /** Names and aliases a request may use. */
  accepted(): string[] {
    return [...this.byName.keys()];
  }

  find(name: string): ScoringMethod | undefined {
    return this.byName.get(name);
  }

  /** The method a request names; an unknown name is a 400 listing the offered ones. */
  get(name: string): ScoringMethod {
    const m = this.byName.get(name);
    if (!m) throw new BadRequestError(`method: unknown method "${name}"; this server offers ${this.names().join(', ')}`);
    return m;
  }

  /** Every method whose name is not in `off`. */
  without(off: readonly string[]): MethodRegistry {
    return new MethodRegistry(this.list.filter((m) => !off.includes(m.name)));
  }
}
