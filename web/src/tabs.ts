// The view tabs, after the WAI-ARIA tabs pattern: real buttons in a tablist, one in the tab
// order (roving tabindex), arrow keys / Home / End move and select, the URL hash remembers.
import { h } from './dom.ts';

export interface TabSpec {
  id: string;
  label: string;
  panel: HTMLElement;
}

export class Tabs {
  private readonly buttons = new Map<string, HTMLButtonElement>();
  private readonly specs: TabSpec[] = [];
  private readonly list: HTMLDivElement;
  current = '';
  onChange: (id: string) => void = () => {};

  constructor(nav: HTMLElement, private readonly main: HTMLElement) {
    this.list = h('div', { role: 'tablist', 'aria-label': 'Views', class: 'tablist' });
    nav.replaceChildren(this.list);
    this.list.addEventListener('keydown', (e) => this.onKey(e));
    addEventListener('hashchange', () => {
      const id = location.hash.slice(1);
      if (this.buttons.has(id) && id !== this.current) this.select(id, false);
    });
  }

  /** Sets which tabs exist, keeping the current one when it still does. */
  set(specs: TabSpec[]): void {
    this.specs.splice(0, this.specs.length, ...specs);
    this.buttons.clear();
    this.list.replaceChildren();
    for (const spec of specs) {
      const button = h(
        'button',
        { type: 'button', role: 'tab', id: `tab-${spec.id}`, 'aria-controls': `panel-${spec.id}`, 'data-tab': spec.id, onclick: () => this.select(spec.id) },
        spec.label,
      );
      spec.panel.id = `panel-${spec.id}`;
      spec.panel.setAttribute('role', 'tabpanel');
      spec.panel.setAttribute('aria-labelledby', button.id);
      spec.panel.tabIndex = 0;
      this.buttons.set(spec.id, button);
      this.list.append(button);
    }
    this.main.replaceChildren(...specs.map((s) => s.panel));
    const wanted = location.hash.slice(1);
    const first = this.buttons.has(wanted) ? wanted : this.buttons.has(this.current) ? this.current : specs[0]?.id;
    if (first) this.select(first, false);
  }

  select(id: string, focus = true): void {
    const button = this.buttons.get(id);
    if (!button) return;
    this.current = id;
    for (const spec of this.specs) {
      const on = spec.id === id;
      const b = this.buttons.get(spec.id)!;
      b.setAttribute('aria-selected', String(on));
      b.tabIndex = on ? 0 : -1;
      spec.panel.hidden = !on;
    }
    if (focus) button.focus();
    if (location.hash.slice(1) !== id) history.replaceState(null, '', `#${id}`);
    this.onChange(id);
  }

  private onKey(e: KeyboardEvent): void {
    const ids = this.specs.map((s) => s.id);
    const at = ids.indexOf(this.current);
    let next = -1;
    if (e.key === 'ArrowRight') next = (at + 1) % ids.length;
    else if (e.key === 'ArrowLeft') next = (at - 1 + ids.length) % ids.length;
    else if (e.key === 'Home') next = 0;
    else if (e.key === 'End') next = ids.length - 1;
    if (next < 0) return;
    e.preventDefault();
    this.select(ids[next]);
  }
}
