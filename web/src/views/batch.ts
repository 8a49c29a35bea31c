// Batch: several images in one POST /v1/detect/batch, the answers in a grid sortable by score,
// name or verdict; any row opens in Inspect with its overlay. Shown when the server has `batch`.
import { field, fill, fmt, h, select, setOptions } from '../dom.ts';
import { filePicker } from '../files.ts';
import { Notice, withBusy } from '../notice.ts';
import { CATEGORY_LIST_ID, type AppContext } from '../context.ts';
import { MapLayer } from '../map/layer.ts';
import { MapCanvas } from '../viewer.ts';
import { bitmapOf } from './inspect.ts';
import type { BatchItem, DetectResponse } from '../types.ts';

type SortKey = 'index' | 'name' | 'score' | 'verdict';

interface Row {
  item: BatchItem;
  image: ImageBitmap | null;
  /** Made once; sorting only moves it. */
  el: HTMLTableRowElement;
}

export class BatchView {
  readonly panel: HTMLElement;
  private readonly picker = filePicker('Images for the batch', { testId: 'batch-files' });
  private readonly category = h('input', { list: CATEGORY_LIST_ID, required: true, maxlength: 100, autocomplete: 'off', 'data-testid': 'batch-category' });
  private readonly method: HTMLSelectElement;
  private readonly threshold = h('input', { type: 'number', min: 0, max: 1, step: 0.01, placeholder: 'server default', inputmode: 'decimal' });
  private readonly submit = h('button', { type: 'submit', class: 'primary', 'data-testid': 'run-batch' }, 'Run batch');
  private readonly notice = new Notice('batch');
  private readonly results = h('div', { class: 'batch-results', 'data-testid': 'batch-results' });
  private rows: Row[] = [];
  private readonly canvases: MapCanvas[] = [];
  private sort: { key: SortKey; dir: 1 | -1 } = { key: 'index', dir: 1 };

  constructor(
    private readonly ctx: AppContext,
    private readonly open: (name: string, image: ImageBitmap | null, response: DetectResponse) => void,
  ) {
    this.method = select('method', ctx.methodOptions());
    this.category.addEventListener('change', () => void this.ctx.followDefaultMethod(this.category, this.method));
    const form = h(
      'form',
      { class: 'batch-form', novalidate: true },
      this.picker.el,
      h('div', { class: 'form-grid' }, field('Category', this.category), field('Method', this.method), field('Threshold (optional)', this.threshold)),
      h('div', { class: 'row' }, this.submit),
      this.notice.el,
    );
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      void this.run();
    });
    this.panel = h('section', { class: 'panel', 'data-view': 'batch' }, h('h2', {}, 'Batch'), form, this.results);
  }

  refresh(): void {
    setOptions(this.method, this.ctx.methodOptions());
  }

  private async run(): Promise<void> {
    const files = this.picker.files();
    if (!files.length) return this.notice.fail(new Error('Choose the images first.'));
    if (!this.category.value.trim()) {
      this.category.focus();
      return this.notice.fail(new Error('Enter a category.'));
    }
    const form = new FormData();
    for (const f of files) form.append('image', f, f.name);
    form.append('category', this.category.value.trim());
    form.append('method', this.method.value);
    form.append('map', 'grid');
    if (this.threshold.value.trim()) form.append('threshold', this.threshold.value.trim());
    const answer = await withBusy(this.submit, this.notice, `Scoring ${files.length} images…`, () => this.ctx.api.batch(form), (a) => {
      const failed = a.results.filter((r) => !r.ok).length;
      return `Scored ${a.count} images${failed ? `; ${failed} failed` : ''}.`;
    });
    if (!answer) return;
    const warning = answer.results.find((r) => r.ok && r.result.model.warning);
    if (warning?.ok) this.ctx.showModelWarning(warning.result.model.warning!);
    for (const c of this.canvases.splice(0)) c.dispose();
    this.rows = await Promise.all(
      answer.results.map(async (item) => {
        const image = files[item.index] ? await bitmapOf(files[item.index]) : null;
        return { item, image, el: this.row(item, image) };
      }),
    );
    this.render();
  }

  private value(row: Row, key: SortKey): number | string {
    const { item } = row;
    if (key === 'index') return item.index;
    if (key === 'name') return item.filename.toLowerCase();
    if (key === 'score') return item.ok ? item.result.score : -1;
    return item.ok ? (item.result.isAnomalous ? 2 : 1) : 0;
  }

  private sorted(): Row[] {
    const { key, dir } = this.sort;
    return [...this.rows].sort((a, b) => {
      const va = this.value(a, key);
      const vb = this.value(b, key);
      const order = va < vb ? -1 : va > vb ? 1 : 0;
      return order ? order * dir : a.item.index - b.item.index; // ties keep the upload order
    });
  }

  private header(label: string, key: SortKey): HTMLTableCellElement {
    const on = this.sort.key === key;
    const button = h('button', { type: 'button', class: 'sort', 'data-sort': key }, label, h('span', { 'aria-hidden': 'true' }, on ? (this.sort.dir === 1 ? ' ▲' : ' ▼') : ' ↕'));
    button.addEventListener('click', () => {
      // Scores and verdicts first high, names first A.
      const first = key === 'score' || key === 'verdict' ? -1 : 1;
      this.sort = { key, dir: on ? ((-this.sort.dir) as 1 | -1) : first };
      this.render();
      this.results.querySelector<HTMLButtonElement>(`button[data-sort="${key}"]`)?.focus();
    });
    return h('th', { scope: 'col', 'aria-sort': on ? (this.sort.dir === 1 ? 'ascending' : 'descending') : 'none' }, button);
  }

  private render(): void {
    const body = this.sorted().map((row) => row.el);
    fill(
      this.results,
      h(
        'table',
        { class: 'batch-table' },
        h('caption', {}, `${this.rows.length} images; sort with the column buttons`),
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Map'), this.header('Name', 'name'), this.header('Score', 'score'), this.header('Verdict', 'verdict'), h('th', { scope: 'col' }, 'Summary'), h('th', { scope: 'col' }, ''))),
        h('tbody', {}, ...body),
      ),
    );
  }

  private row(item: BatchItem, image: ImageBitmap | null): HTMLTableRowElement {
    if (!item.ok) {
      return h(
        'tr',
        { class: 'failed', 'data-testid': 'batch-row' },
        h('td', {}, ''),
        h('th', { scope: 'row' }, item.filename),
        h('td', {}, '—'),
        h('td', {}, 'error'),
        h('td', { colspan: 2 }, `${item.status} ${item.error}: ${item.message}`),
      );
    }
    const r = item.result;
    const thumb = h('td', { class: 'batch-thumb' });
    if (r.map?.type === 'grid') {
      const canvas = new MapCanvas(`Anomaly map of ${item.filename}`);
      this.canvases.push(canvas);
      canvas.layers = { heat: true, contour: true, boxes: false };
      const layer = new MapLayer(r.map, r.image.width, r.image.height);
      layer.setThreshold(r.threshold);
      thumb.append(canvas.canvas);
      canvas.show(image, layer, 0); // drawn once the row is in the page (the canvas observes its size)
    }
    const verdict = r.isAnomalous ? 'anomalous' : 'normal';
    return h(
      'tr',
      { 'data-testid': 'batch-row' },
      thumb,
      h('th', { scope: 'row' }, item.filename),
      h('td', { 'data-testid': 'batch-score' }, fmt(r.score)),
      h('td', {}, h('span', { class: `verdict verdict-${verdict}` }, verdict)),
      h('td', { class: 'summary' }, r.summary),
      h('td', {}, h('button', { type: 'button', class: 'secondary small', onclick: () => this.open(item.filename, image, r) }, 'Inspect')),
    );
  }
}
