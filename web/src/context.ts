// What every view shares: the API client, what the server offers, the known categories (a
// <datalist> every category field uses) and the page-wide random-model warning.
import type { Api } from './api.ts';
import type { Capability, Category, ModelInfo } from './types.ts';
import { h } from './dom.ts';

export const CATEGORY_LIST_ID = 'category-list';

const METHOD_NAMES: Record<string, string> = {
  ours: 'Dense frequency (ours)',
  'dense-frequency': 'Dense frequency',
  winclip: 'WinCLIP',
  musc: 'MuSc',
};

export class AppContext {
  model: ModelInfo | null = null;
  capabilities = new Set<Capability>(['detect']);
  categories: Category[] = [];
  private readonly listeners = new Set<() => void>();
  private readonly datalist: HTMLDataListElement;

  constructor(
    readonly api: Api,
    private readonly warning: HTMLElement,
  ) {
    this.datalist = h('datalist', { id: CATEGORY_LIST_ID });
    document.body.append(this.datalist);
  }

  has(c: Capability): boolean {
    return this.capabilities.has(c);
  }

  /** Methods the server offers, as [value, label] options (batch may add musc). */
  methodOptions(): Array<[string, string]> {
    const methods = this.model?.methods?.length ? this.model.methods : ['ours'];
    return methods.map((m) => [m, METHOD_NAMES[m] ?? m]);
  }

  /** The methods that score one image on its own: not MuSc, which scores a batch together (Batch view only). */
  singleImageMethodOptions(): Array<[string, string]> {
    return this.methodOptions().filter(([m]) => m !== 'musc');
  }

  /**
   * When `category` names a stored category, selects its default method in `method` (if offered
   * there) and says so by returning true: what the menu shows is what is sent, and the person can
   * still change it.
   */
  followDefaultMethod(category: HTMLInputElement, method: HTMLSelectElement): boolean {
    const stored = this.categories.find((c) => c.id === category.value.trim());
    if (!stored || ![...method.options].some((o) => o.value === stored.defaultMethod)) return false;
    method.value = stored.defaultMethod;
    return true;
  }

  /** Prompt choices: the modes the model lists, and each learned prompt file by name. */
  promptOptions(): Array<[string, string]> {
    const modes = this.model?.promptModes ?? ['templated', 'custom'];
    const out: Array<[string, string]> = [];
    if (modes.includes('templated')) out.push(['templated', 'Templated (states × templates)']);
    if (modes.includes('custom')) out.push(['custom', 'Custom phrases']);
    if (modes.includes('learned')) {
      out.push(['learned', 'Learned (default file)']);
      for (const f of this.model?.learnedPrompts?.available ?? []) out.push([`learned:${f.name}`, `Learned: ${f.name}`]);
    }
    return out.length ? out : [['templated', 'Templated']];
  }

  /** Reloads the categories (when the server has them) and tells the views. */
  async refreshCategories(): Promise<void> {
    if (!this.has('categories')) return;
    this.categories = await this.api.categories();
    this.datalist.replaceChildren(...this.categories.map((c) => h('option', { value: c.id }, c.name !== c.id ? c.name : null)));
    for (const fn of this.listeners) fn();
  }

  onCategories(fn: () => void): void {
    this.listeners.add(fn);
  }

  showModelWarning(text: string): void {
    this.warning.textContent = `Warning: ${text}`;
    this.warning.hidden = false;
  }
}

/** Whether a method has frequency branches (branches=true). */
export const hasBranches = (method: string) => method === 'ours' || method === 'dense-frequency';
