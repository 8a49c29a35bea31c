// Review: recent detections of a category (newest first, filtered by verdict), each marked
// normal or anomalous by a person; a false alarm can go straight into the references.
// Shown when the server has `feedback`.
import { field, fill, fmt, h, select, when } from '../dom.ts';
import { Notice, withBusy } from '../notice.ts';
import { CATEGORY_LIST_ID, type AppContext } from '../context.ts';
import type { DetectionRecord, FeedbackInput } from '../types.ts';

export class ReviewView {
  readonly panel: HTMLElement;
  private readonly category = h('input', { list: CATEGORY_LIST_ID, maxlength: 100, autocomplete: 'off', placeholder: 'all categories', 'data-testid': 'review-category' });
  private readonly verdict = select('verdict', [['', 'All verdicts'], ['anomalous', 'Anomalous'], ['normal', 'Normal']]);
  private readonly limit = select('limit', [['20', '20'], ['50', '50'], ['100', '100']], '50');
  private readonly load = h('button', { type: 'submit', class: 'primary', 'data-testid': 'load-detections' }, 'Show detections');
  private readonly notice = new Notice('review');
  private readonly list = h('ul', { class: 'detections', 'aria-label': 'Detections', 'data-testid': 'detections' });
  private readonly urls: string[] = [];
  /** Detections this page added to their category's references. */
  private readonly addedToReferences = new Set<string>();

  constructor(private readonly ctx: AppContext) {
    const form = h(
      'form',
      { class: 'review-form', novalidate: true },
      h('div', { class: 'form-grid' }, field('Category', this.category), field('Verdict', this.verdict), field('How many', this.limit)),
      h('div', { class: 'row' }, this.load),
      this.notice.el,
    );
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      void this.refresh();
    });
    this.panel = h('section', { class: 'panel', 'data-view': 'review' }, h('h2', {}, 'Review detections'), form, this.list);
  }

  async refresh(): Promise<void> {
    const verdict = (this.verdict.value || undefined) as 'anomalous' | 'normal' | undefined;
    const records = await withBusy(
      this.load,
      this.notice,
      'Loading detections…',
      () => this.ctx.api.detections({ category: this.category.value.trim() || undefined, verdict, limit: Number(this.limit.value) }),
      (r) => `${r.length} detection${r.length === 1 ? '' : 's'}.`,
    );
    if (!records) return;
    for (const u of this.urls.splice(0)) URL.revokeObjectURL(u);
    fill(this.list, ...records.map((r) => this.card(r)));
    if (!records.length) this.list.append(h('li', { class: 'hint' }, 'No detections match.'));
  }

  private card(record: DetectionRecord): HTMLLIElement {
    const li = h('li', { class: record.hasImage ? 'detection' : 'detection no-image', 'data-testid': 'detection', 'data-id': record.id });
    this.renderCard(li, record);
    return li;
  }

  /** `said`: what the last action on this card did, kept in the rebuilt card's notice. */
  private renderCard(li: HTMLLIElement, r: DetectionRecord, said = ''): void {
    const verdict = r.isAnomalous ? 'anomalous' : 'normal';
    const note = h('input', { type: 'text', maxlength: 500, placeholder: 'optional note', 'aria-label': `Note for detection ${r.id}` });
    const notice = new Notice(`feedback-${r.id}`);
    notice.done(said);
    const act = (label: string, input: Omit<FeedbackInput, 'note'>, testId: string) => {
      const b = h('button', { type: 'button', class: input.addTo ? 'primary small' : 'secondary small', 'data-testid': testId }, label);
      b.addEventListener('click', async () => {
        const body: FeedbackInput = { ...input, ...(note.value.trim() ? { note: note.value.trim() } : {}) };
        let message = input.addTo ? 'Marked normal and added to the references.' : 'Saved.';
        const updated = await withBusy(b, notice, 'Saving…', () => this.ctx.api.feedback(r.id, body), (u) => {
          if (u.addedTo?.references?.alreadyHeld) message = 'Marked normal; the image was already a reference.';
          if (u.addedTo?.references?.calibrationOutdated) message += ' The calibration is now out of date: run it again.';
          return message;
        });
        if (updated) {
          if (input.addTo === 'references') this.addedToReferences.add(r.id);
          this.renderCard(li, updated, message);
          li.querySelector<HTMLElement>('.feedback-state')?.focus();
        }
      });
      return b;
    };
    const image = r.hasImage ? h('div', { class: 'detection-image' }) : null;
    if (image) void this.loadImage(r.id, r.category, r.time, image);
    const fb = r.feedback;
    fill(
      li,
      image,
      h(
        'div',
        { class: 'detection-body' },
        h('p', {}, h('span', { class: `verdict verdict-${verdict}` }, verdict), ` score ${fmt(r.score)} · threshold ${fmt(r.threshold, 2)} (${r.thresholdSource}) · ${r.method} · ${when(r.time)}`),
        h('p', { class: 'summary' }, r.summary),
        r.metadata && Object.keys(r.metadata).length ? h('p', { class: 'hint' }, Object.entries(r.metadata).map(([k, v]) => `${k}: ${v}`).join(' · ')) : null,
        h('p', { class: 'feedback-state', tabindex: -1, 'data-testid': 'feedback-state' }, fb ? `Reviewed: ${fb.label}${fb.note ? ` (“${fb.note}”)` : ''}, ${when(fb.at)}` : 'Not reviewed yet.'),
        h(
          'div',
          { class: 'row wrap' },
          note,
          act('Mark normal', { label: 'normal' }, 'mark-normal'),
          act('Mark anomalous', { label: 'anomalous' }, 'mark-anomalous'),
          // Once the image is a reference there is nothing more to add (the server would add it once anyway).
          r.isAnomalous && r.categoryId && !this.addedToReferences.has(r.id) ? act('False alarm: add to references', { label: 'normal', addTo: 'references' }, 'add-to-references') : null,
        ),
        notice.el,
      ),
    );
  }

  private async loadImage(id: string, category: string, time: string, into: HTMLElement): Promise<void> {
    try {
      const url = URL.createObjectURL(await this.ctx.api.detectionImage(id));
      this.urls.push(url);
      fill(into, h('img', { src: url, alt: `Image of the ${category} detection of ${when(time)}` }));
    } catch {
      fill(into, h('span', { class: 'hint' }, 'image unavailable'));
    }
  }
}
