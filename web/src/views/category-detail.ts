// One stored category: its normal references (thumbnails; add, remove) and its calibration
// (run it on the references or on held-out normal images; the histogram and the guarantee).
import { facts, fill, fmt, h, when } from '../dom.ts';
import { filePicker } from '../files.ts';
import { Notice, withBusy } from '../notice.ts';
import { drawHistogram } from '../histogram.ts';
import type { AppContext } from '../context.ts';
import type { Calibration, Category, Reference } from '../types.ts';

export class CategoryDetail {
  readonly el = h('section', { class: 'category-detail', hidden: true, 'aria-labelledby': 'category-detail-title', 'data-testid': 'category-detail' });
  private category: Category | null = null;
  private readonly title = h('h3', { id: 'category-detail-title' });
  private readonly facts = h('div');
  private readonly refs = h('ul', { class: 'thumbs', 'aria-label': 'Normal references', tabindex: -1, 'data-testid': 'references' });
  private readonly refCount = h('p', { class: 'hint', 'data-testid': 'reference-count' });
  private readonly refPicker = filePicker('Normal images to add as references', { testId: 'reference-files' });
  private readonly addButton = h('button', { type: 'button', 'data-testid': 'add-references' }, 'Add references');
  private readonly refNotice = new Notice('references');
  private readonly calPicker = filePicker('Held-out normal images (optional)', { testId: 'calibration-files' });
  private readonly calButton = h('button', { type: 'button', 'data-testid': 'calibrate' }, 'Run calibration');
  private readonly calNotice = new Notice('calibration');
  private readonly calResult = h('div', { class: 'calibration', 'data-testid': 'calibration-result' });
  private readonly histogram = h('canvas', { class: 'histogram', role: 'img', 'aria-label': 'Histogram of the normal scores' });

  constructor(
    private readonly ctx: AppContext,
    private readonly changed: (c: Category) => void,
  ) {
    this.addButton.addEventListener('click', () => void this.addReferences());
    this.calButton.addEventListener('click', () => void this.calibrate());
    this.el.append(
      this.title,
      this.facts,
      h(
        'div',
        { class: 'subsection' },
        h('h4', {}, 'Normal references'),
        this.refCount,
        this.refs,
        this.refPicker.el,
        h('div', { class: 'row' }, this.addButton),
        this.refNotice.el,
      ),
      h(
        'div',
        { class: 'subsection' },
        h('h4', {}, 'Calibration'),
        h('p', { class: 'hint' }, 'Without held-out images the stored references are scored leave-one-out. The threshold is then set so that normal parts are flagged at most at the target false-alarm rate.'),
        this.calPicker.el,
        h('div', { class: 'row' }, this.calButton),
        this.calNotice.el,
        this.calResult,
      ),
    );
  }

  async show(category: Category): Promise<void> {
    this.category = category;
    this.el.hidden = false;
    this.render();
    await withBusy(null, this.refNotice, 'Loading references…', () => this.loadReferences());
  }

  /** The same category as the server has it now, redrawn quietly: no notice is touched (a message being read stays). */
  async update(category: Category): Promise<void> {
    if (this.category?.id !== category.id) return;
    this.category = category;
    this.render();
    await this.loadReferences().catch(() => undefined);
  }

  hide(): void {
    this.category = null;
    this.el.hidden = true;
  }

  private render(): void {
    const c = this.category!;
    this.title.textContent = c.id === c.name ? c.id : `${c.id} (prompt name "${c.name}")`;
    const rows: Array<[string, string]> = [
      ['Default method', c.defaultMethod],
      ['Target false-alarm rate', `${(c.targetFalseAlarmRate * 100).toFixed(2)}%`],
      ['References', `${c.references.count} of ${c.references.limit}`],
      ['Calibrated', !c.calibration ? 'no' : `${when(c.calibration.calibratedAt)}, threshold ${fmt(c.calibration.threshold)}${c.calibration.current === false ? ' (out of date: not used)' : ''}`],
      ['Updated', when(c.updatedAt)],
    ];
    if (c.needsReembedding) rows.push(['Note', 'references need re-embedding for the loaded model']);
    if (c.notes) rows.push(['Notes', c.notes]);
    fill(this.facts, facts(rows));
    this.refCount.textContent = `${c.references.count} of ${c.references.limit} references.`;
    this.renderCalibration(c.calibration);
  }

  private async loadReferences(): Promise<void> {
    const c = this.category!;
    const refs = await this.ctx.api.references(c.id);
    if (this.category?.id !== c.id) return;
    fill(this.refs, ...refs.map((r) => this.thumb(r)));
    if (!refs.length) this.refs.append(h('li', { class: 'hint' }, 'No references yet.'));
  }

  private thumb(r: Reference): HTMLLIElement {
    const remove = h('button', { type: 'button', class: 'secondary small', 'aria-label': `Remove reference ${r.id}` }, 'Remove');
    remove.addEventListener('click', () =>
      void withBusy(remove, this.refNotice, 'Removing the reference…', async () => {
        await this.ctx.api.deleteReference(this.category!.id, r.id);
        await this.reload();
        // The focused Remove button is gone with its thumbnail: the keyboard goes on from the list.
        this.refs.focus();
      }, () => 'Reference removed.'),
    );
    return h(
      'li',
      { class: 'thumb', 'data-testid': 'reference' },
      h('img', { src: r.thumbnail, alt: `Reference ${r.width} × ${r.height} px, added ${when(r.addedAt)}`, loading: 'lazy' }),
      h('span', { class: 'hint' }, `${r.width} × ${r.height}`),
      remove,
    );
  }

  private async reload(): Promise<void> {
    const c = await this.ctx.api.category(this.category!.id);
    this.category = c;
    this.render();
    await this.loadReferences();
    this.changed(c);
  }

  private async addReferences(): Promise<void> {
    const files = this.refPicker.files();
    if (!files.length) return this.refNotice.fail(new Error('Choose one or more normal images first.'));
    await withBusy(this.addButton, this.refNotice, `Adding ${files.length} reference${files.length > 1 ? 's' : ''} (the model embeds each)…`, async () => {
      const out = await this.ctx.api.addReferences(this.category!.id, files);
      this.refPicker.clear();
      await this.reload();
      return out;
    }, (out) => {
      const dup = out.duplicates?.length ?? 0;
      const skipped = dup ? ` ${dup} ${dup === 1 ? 'was' : 'were'} already a reference and not added again.` : '';
      return `Added ${out.added.length}; ${out.references.count} of ${out.references.limit} references.${skipped}`;
    });
  }

  private async calibrate(): Promise<void> {
    const images = this.calPicker.files();
    const what = images.length ? `${images.length} held-out image${images.length > 1 ? 's' : ''}` : 'the stored references (leave-one-out)';
    await withBusy(this.calButton, this.calNotice, `Calibrating on ${what}…`, async () => {
      const cal = await this.ctx.api.calibrate(this.category!.id, images);
      this.calPicker.clear();
      await this.reload();
      this.renderCalibration(cal);
      return cal;
    }, (cal) => `Calibrated on ${cal.m} normal scores: threshold ${fmt(cal.threshold)}.`);
  }

  private renderCalibration(cal: Calibration | null): void {
    if (!cal) {
      fill(this.calResult, h('p', { class: 'hint' }, 'Not calibrated yet: detections use the request threshold or the server default.'));
      return;
    }
    const outdated = cal.current === false
      ? h('p', { class: 'error', 'data-testid': 'calibration-outdated' }, `Out of date: ${cal.outdated ?? 'the category changed since'}. Run the calibration again.`)
      : null;
    fill(
      this.calResult,
      outdated,
      h('p', { class: 'guarantee', 'data-testid': 'guarantee' }, cal.guarantee),
      this.histogram,
      facts(
          [
            ['Normal scores (m)', String(cal.m)],
            ['Source', cal.source === 'references' ? 'stored references, leave-one-out' : 'held-out images'],
            ['Threshold', `${fmt(cal.threshold)} (rank ${cal.rank} of ${cal.m})`],
            ['Target false-alarm rate', `${(cal.targetFalseAlarmRate * 100).toFixed(2)}%`],
            ['Confidence', `${(cal.confidence * 100).toFixed(1)}%`],
            ['Pixel threshold', fmt(cal.pixelThreshold)],
            ['Method', cal.method],
            ['Calibrated', when(cal.calibratedAt)],
          ],
      ),
    );
    this.histogram.setAttribute('aria-label', `Histogram of ${cal.m} normal scores from ${fmt(Math.min(...cal.scores))} to ${fmt(Math.max(...cal.scores))}, threshold ${fmt(cal.threshold)}`);
    requestAnimationFrame(() => drawHistogram(this.histogram, { scores: cal.scores, threshold: cal.threshold }));
  }
}
