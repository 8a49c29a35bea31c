// A small element builder, so views read as the markup they make.
type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | null | undefined | EventListener>;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (typeof value === 'function') el.addEventListener(name.replace(/^on/, ''), value);
    else if (name === 'class') el.className = String(value);
    else if (value === true) el.setAttribute(name, '');
    else el.setAttribute(name, String(value));
  }
  append(el, children);
  return el;
}

export function append(el: Element, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
}

/** Replaces an element's children. */
export function fill(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  append(el, children);
}

let ids = 0;
/** A unique id for label/aria wiring. */
export const uid = (prefix: string) => `${prefix}-${++ids}`;

/** A labelled form control: <div class="field"><label for=…>text</label>control hint</div>. */
export function field(label: string, control: HTMLElement, hint?: string): HTMLDivElement {
  if (!control.id) control.id = uid('f');
  const hintEl = hint ? h('p', { class: 'hint', id: `${control.id}-hint` }, hint) : null;
  if (hintEl) control.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'field' }, h('label', { for: control.id }, label), control, hintEl);
}

export function select(name: string, options: Array<[value: string, label: string]>, value?: string): HTMLSelectElement {
  const el = h('select', { name });
  for (const [v, label] of options) el.append(h('option', { value: v }, label));
  if (value !== undefined) el.value = value;
  return el;
}

export const fmt = (v: number, digits = 3) => (Number.isFinite(v) ? v.toFixed(digits) : '—');
export const pct = (v: number) => `${(v * 100).toFixed(v < 0.01 ? 2 : 1)}%`;
export const when = (iso: string) => {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
};

/** Replaces a select's options, keeping its value when it is still offered. */
export function setOptions(el: HTMLSelectElement, options: Array<[value: string, label: string]>): void {
  const value = el.value;
  el.replaceChildren(...options.map(([v, label]) => h('option', { value: v }, label)));
  if (options.some(([v]) => v === value)) el.value = value;
}

/** A description list of label/value pairs, each pair in its own <div> (valid in a <dl>). */
export function facts(rows: Array<[string, string]>, cls = 'facts', testIds = false): HTMLDListElement {
  return h(
    'dl',
    { class: cls },
    ...rows.map(([k, v]) => h('div', {}, h('dt', {}, k), h('dd', testIds ? { 'data-testid': `fact-${k.toLowerCase().replace(/ /g, '-')}` } : {}, v))),
  );
}
