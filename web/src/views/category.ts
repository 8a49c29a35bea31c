// Category: the stored categories (list, create or update, delete) and the chosen one's
// references and calibration (category-detail.ts). Shown when the server has `categories`.
import { field, fill, h, select, when } from '../dom.ts';
import { Notice, withBusy } from '../notice.ts';
import type { AppContext } from '../context.ts';
import type { Category } from '../types.ts';
import { CategoryDetail } from './category-detail.ts';

export class CategoryView {
  readonly panel: HTMLElement;
  private readonly table = h('div', { class: 'category-table', tabindex: -1, 'data-testid': 'category-list' });
  private readonly listNotice = new Notice('categories');
  private readonly id = h('input', { name: 'id', required: true, maxlength: 100, autocomplete: 'off', 'data-testid': 'category-id' });
  private readonly name = h('input', { name: 'name', maxlength: 100, autocomplete: 'off', placeholder: 'same as the id' });
  private readonly rate = h('input', { type: 'number', name: 'targetFalseAlarmRate', min: 0.0001, max: 0.5, step: 0.001, value: 0.01, inputmode: 'decimal' });
  private readonly method: HTMLSelectElement;
  private readonly notes = h('textarea', { name: 'notes', rows: 2, maxlength: 2000 });
  private readonly save = h('button', { type: 'submit', class: 'primary', 'data-testid': 'save-category' }, 'Save category');
  private readonly formNotice = new Notice('category-form');
  private readonly deleteArea = h('div', { class: 'row' });
  private readonly detail: CategoryDetail;
  private selected: string | null = null;

  constructor(private readonly ctx: AppContext) {
    this.method = select('defaultMethod', this.ctx.singleImageMethodOptions());
    this.detail = new CategoryDetail(ctx, () => void this.refreshList());
    const form = h(
      'form',
      { class: 'category-form', novalidate: true },
      h('h3', {}, 'Create or update a category'),
      h(
        'div',
        { class: 'form-grid' },
        field('Id', this.id, 'Letters, digits, spaces and - _ \' . , ( ) & + /; used in detections as the category.'),
        field('Prompt name (optional)', this.name, 'The words the prompts use for the part.'),
        field('Target false-alarm rate', this.rate, 'Between 0 and 0.5; 0.01 = at most 1% of normal parts flagged.'),
        field('Default method', this.method),
      ),
      field('Notes (optional)', this.notes),
      h('div', { class: 'row' }, this.save),
      this.formNotice.el,
    );
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      void this.submit();
    });
    ctx.onCategories(() => this.renderList());
    this.panel = h(
      'section',
      { class: 'panel', 'data-view': 'category' },
      h('h2', {}, 'Categories'),
      h('div', { class: 'row' }, h('button', { type: 'button', class: 'secondary', onclick: () => void this.refreshList() }, 'Refresh list')),
      this.listNotice.el,
      this.table,
      form,
      this.deleteArea,
      this.detail.el,
    );
  }

  /** The list and the open category as the server has them now (another tab or a review may have changed them). */
  async refresh(): Promise<void> {
    await this.refreshList();
    const id = this.selected;
    if (!id || !this.ctx.categories.some((c) => c.id === id)) return;
    const c = await this.ctx.api.category(id).catch(() => undefined);
    if (c && this.selected === id) await this.detail.update(c);
  }

  private async refreshList(): Promise<void> {
    await withBusy(null, this.listNotice, 'Loading categories…', () => this.ctx.refreshCategories());
  }

  private renderList(): void {
    const cats = this.ctx.categories;
    if (!cats.length) return fill(this.table, h('p', { class: 'hint' }, 'No categories yet: create one below.'));
    const rows = cats.map((c) =>
      h(
        'tr',
        { 'aria-current': c.id === this.selected ? 'true' : null },
        h('th', { scope: 'row' }, h('button', { type: 'button', class: 'link', onclick: () => void this.select(c.id), 'data-testid': `open-category-${c.id}` }, c.id)),
        h('td', {}, `${c.references.count} / ${c.references.limit}`),
        h('td', {}, !c.calibration ? 'not calibrated' : c.calibration.current === false ? `${c.calibration.threshold.toFixed(3)} (out of date)` : c.calibration.threshold.toFixed(3)),
        h('td', {}, c.defaultMethod),
        h('td', {}, when(c.updatedAt)),
      ),
    );
    fill(
      this.table,
      h(
        'table',
        {},
        h('caption', {}, `${cats.length} stored categor${cats.length === 1 ? 'y' : 'ies'}`),
        h('thead', {}, h('tr', {}, ...['Category', 'References', 'Threshold', 'Method', 'Updated'].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, ...rows),
      ),
    );
  }

  private async select(id: string): Promise<void> {
    const c = await withBusy(null, this.listNotice, `Opening ${id}…`, () => this.ctx.api.category(id));
    if (!c) return;
    this.selected = c.id;
    this.fillForm(c);
    this.renderList();
    this.renderDelete();
    await this.detail.show(c);
  }

  private fillForm(c: Category): void {
    this.id.value = c.id;
    this.name.value = c.name === c.id ? '' : c.name;
    this.rate.value = String(c.targetFalseAlarmRate);
    if ([...this.method.options].some((o) => o.value === c.defaultMethod)) this.method.value = c.defaultMethod;
    this.notes.value = c.notes ?? '';
  }

  private async submit(): Promise<void> {
    const id = this.id.value.trim();
    if (!id) {
      this.id.focus();
      return this.formNotice.fail(new Error('Enter an id for the category.'));
    }
    const rate = Number(this.rate.value);
    const body = {
      ...(this.name.value.trim() ? { name: this.name.value.trim() } : {}),
      ...(this.rate.value.trim() && Number.isFinite(rate) ? { targetFalseAlarmRate: rate } : {}),
      defaultMethod: this.method.value,
      notes: this.notes.value,
    };
    const c = await withBusy(this.save, this.formNotice, `Saving ${id}…`, () => this.ctx.api.putCategory(id, body), (c) => `Saved category ${c.id}.`);
    if (!c) return;
    await this.ctx.refreshCategories().catch((err) => this.listNotice.fail(err));
    await this.select(c.id);
  }

  /** Deleting asks once more, in the page (no browser dialog); `focus` puts the focus back on the first button. */
  private renderDelete(focus = false): void {
    const id = this.selected;
    if (!id) return fill(this.deleteArea);
    const ask = h('button', { type: 'button', class: 'danger' }, `Delete ${id}…`);
    ask.addEventListener('click', () => {
      const yes = h('button', { type: 'button', class: 'danger' }, `Yes, delete ${id} and its references`);
      const no = h('button', { type: 'button', class: 'secondary', onclick: () => this.renderDelete(true) }, 'Cancel');
      yes.addEventListener('click', async () => {
        const done = await withBusy(yes, this.formNotice, `Deleting ${id}…`, () => this.ctx.api.deleteCategory(id).then(() => true), () => `Deleted ${id}.`);
        if (!done) return;
        this.selected = null;
        this.detail.hide();
        this.renderDelete();
        await this.refreshList();
        // The focused button is gone: keep the keyboard where the list of categories is.
        this.table.focus();
      });
      fill(this.deleteArea, yes, no);
      no.focus();
    });
    fill(this.deleteArea, ask);
    if (focus) ask.focus();
  }
}
