// Inspect: one or several images → /v1/detect with map=grid, each result shown in full
// (result-view.ts) and listed, so the person can go back and forth between them.
import { field, fill, fmt, h, select, setOptions } from '../dom.ts';
import { filePicker } from '../files.ts';
import { Notice } from '../notice.ts';
import { ApiError, describeError } from '../api.ts';
import { CATEGORY_LIST_ID, hasBranches, type AppContext } from '../context.ts';
import { ResultView } from '../result-view.ts';
import type { DetectResponse } from '../types.ts';

interface Item {
  name: string;
  image: ImageBitmap | null;
  response?: DetectResponse;
  error?: string;
}

/** The image as the browser decodes it (EXIF orientation applied), or null (e.g. TIFF). */
export async function bitmapOf(file: Blob): Promise<ImageBitmap | null> {
  try {
    return await createImageBitmap(file, { imageOrientation: 'from-image' });
  } catch {
    return null;
  }
}

const lines = (text: string) => text.split('\n').map((s) => s.trim()).filter(Boolean);

export class InspectView {
  readonly panel: HTMLElement;
  private readonly picker = filePicker('Images to inspect', { testId: 'inspect-files' });
  private readonly category = h('input', { name: 'category', list: CATEGORY_LIST_ID, required: true, maxlength: 100, autocomplete: 'off', placeholder: 'e.g. metal plate', 'data-testid': 'category' });
  private readonly method: HTMLSelectElement;
  private readonly prompts: HTMLSelectElement;
  private readonly normal = h('textarea', { rows: 3, placeholder: 'a photo of a flawless {}' });
  private readonly abnormal = h('textarea', { rows: 3, placeholder: 'a photo of a {} with a scratch' });
  private readonly custom: HTMLElement;
  private readonly threshold = h('input', { type: 'number', min: 0, max: 1, step: 0.01, placeholder: 'server default', inputmode: 'decimal' });
  private readonly branches = h('input', { type: 'checkbox', id: 'inspect-branches', 'data-testid': 'branches' });
  private readonly submit = h('button', { type: 'submit', class: 'primary', 'data-testid': 'detect' }, 'Detect anomalies');
  private readonly notice = new Notice('inspect');
  private readonly list = h('ol', { class: 'result-list', 'aria-label': 'Inspected images' });
  private readonly clear = h('button', { type: 'button', class: 'secondary small', hidden: true, 'data-testid': 'clear-results' }, 'Clear the list');
  private readonly result = new ResultView();
  private items: Item[] = [];
  private current = -1;

  constructor(private readonly ctx: AppContext) {
    this.method = select('method', ctx.singleImageMethodOptions());
    this.prompts = select('prompts', ctx.promptOptions());
    this.custom = h(
      'div',
      { class: 'custom-prompts', hidden: true },
      field('Normal phrases, one per line ({} is the category)', this.normal),
      field('Abnormal phrases, one per line', this.abnormal),
    );
    this.prompts.addEventListener('change', () => (this.custom.hidden = this.prompts.value !== 'custom'));
    this.method.addEventListener('change', () => this.syncBranches());
    this.category.addEventListener('change', () => this.followCategory());
    this.clear.addEventListener('click', () => this.clearAll());
    this.syncBranches();
    const form = h(
      'form',
      { class: 'detect-form', novalidate: true },
      this.picker.el,
      h(
        'div',
        { class: 'form-grid' },
        field('Category', this.category, 'The kind of part, e.g. "bottle" or "ball screw"; stored categories are suggested.'),
        field('Method', this.method),
        field('Prompts', this.prompts),
        field('Threshold (optional)', this.threshold, 'Blank: the category calibration or the server default.'),
      ),
      this.custom,
      h('label', { class: 'check', for: this.branches.id }, this.branches, ' Also show the part maps: the full, high and low frequency branches (and the references\' few-shot part)'),
      h('div', { class: 'row' }, this.submit),
      this.notice.el,
    );
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      void this.run();
    });
    this.panel = h(
      'section',
      { class: 'panel', 'data-view': 'inspect' },
      h('h2', {}, 'Inspect images'),
      form,
      h('div', { class: 'row wrap' }, this.list, this.clear),
      this.result.el,
    );
  }

  /** The server's methods and prompt modes, once /v1/models has answered. */
  refresh(): void {
    setOptions(this.method, this.ctx.singleImageMethodOptions());
    setOptions(this.prompts, this.ctx.promptOptions());
    this.custom.hidden = this.prompts.value !== 'custom';
    this.syncBranches();
  }

  /** A stored category's default method, chosen when its id is entered (the menu still overrides it). */
  private followCategory(): void {
    if (this.ctx.followDefaultMethod(this.category, this.method)) this.syncBranches();
  }

  private syncBranches(): void {
    const ok = hasBranches(this.method.value);
    this.branches.disabled = !ok;
    if (!ok) this.branches.checked = false;
  }

  private formFor(file: File): FormData {
    const form = new FormData();
    form.append('image', file, file.name);
    form.append('category', this.category.value.trim());
    form.append('method', this.method.value);
    form.append('prompts', this.prompts.value);
    if (this.prompts.value === 'custom') {
      for (const p of lines(this.normal.value)) form.append('normal', p);
      for (const p of lines(this.abnormal.value)) form.append('abnormal', p);
    }
    form.append('map', 'grid');
    if (this.threshold.value.trim() !== '') form.append('threshold', this.threshold.value.trim());
    if (this.branches.checked && !this.branches.disabled) form.append('branches', 'true');
    return form;
  }

  private async run(): Promise<void> {
    const files = this.picker.files();
    if (!files.length) return this.notice.fail(new Error('Choose at least one image first.'));
    if (!this.category.value.trim()) {
      this.category.focus();
      return this.notice.fail(new Error('Enter a category (what the part is).'));
    }
    this.submit.disabled = true;
    let failures = 0;
    let notSent = 0;
    let lastError: unknown;
    try {
      for (const [i, file] of files.entries()) {
        this.notice.step(i, files.length, `Scoring ${file.name} (${i + 1} of ${files.length})…`);
        const item: Item = { name: file.name, image: null };
        try {
          const [response, image] = await Promise.all([this.ctx.api.detect(this.formFor(file)), bitmapOf(file)]);
          item.response = response;
          item.image = image;
          if (response.model.warning) this.ctx.showModelWarning(response.model.warning);
        } catch (err) {
          item.error = describeError(err);
          failures++;
          lastError = err;
        }
        this.add(item);
        // No key, or no server: the next images would fail the same way.
        if (lastError instanceof ApiError && (lastError.status === 401 || lastError.status === 0)) {
          notSent = files.length - i - 1;
          break;
        }
      }
    } finally {
      this.submit.disabled = false;
    }
    // (The images after a network failure or a 401 were not sent: said with the failure, which would otherwise overwrite it.)
    const unsent = notSent > 0 ? `; ${notSent} more image${notSent > 1 ? 's were' : ' was'} not sent` : '';
    if (failures) this.notice.fail(lastError, failures === 1 && files.length === 1 ? files[0].name : `${failures} of ${files.length} images failed${unsent}; last`);
    else this.notice.done(`Scored ${files.length} image${files.length > 1 ? 's' : ''}.`);
  }

  /** Shows a result obtained elsewhere (a batch row). */
  showExternal(name: string, image: ImageBitmap | null, response: DetectResponse): void {
    this.add({ name, image, response });
  }

  private add(item: Item): void {
    this.items.push(item);
    if (item.response) this.select(this.items.length - 1);
    else this.renderList();
  }

  private select(index: number): void {
    const item = this.items[index];
    if (!item?.response) return;
    this.current = index;
    this.renderList();
    this.result.show({ name: item.name, image: item.image, response: item.response });
  }

  /** Forgets every result: the list, and the one shown. */
  private clearAll(): void {
    this.items = [];
    this.current = -1;
    this.result.hide();
    this.renderList();
    this.picker.focus();
  }

  private renderList(): void {
    const listed = this.items.length >= 2 || this.items.some((i) => i.error);
    this.clear.hidden = !listed;
    if (!listed) return fill(this.list);
    fill(
      this.list,
      ...this.items.map((item, i) =>
        h(
          'li',
          {},
          item.response
            ? h(
                'button',
                { type: 'button', class: 'result-chip', 'aria-pressed': String(i === this.current), onclick: () => this.select(i) },
                h('span', { class: 'chip-name' }, item.name),
                h('span', { class: `verdict verdict-${item.response.isAnomalous ? 'anomalous' : 'normal'}` }, item.response.isAnomalous ? 'anomalous' : 'normal'),
                h('span', { class: 'chip-score' }, fmt(item.response.score)),
              )
            : h('span', { class: 'result-chip failed' }, h('span', { class: 'chip-name' }, item.name), h('span', { class: 'chip-error' }, item.error ?? 'failed')),
        ),
      ),
    );
  }
}
