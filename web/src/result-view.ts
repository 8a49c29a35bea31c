// One detection shown in full: score, verdict and summary, the image with the overlay drawn
// from the returned grid, the colour legend, and a threshold slider that recomputes regions and
// contour in the browser, with the branch maps (full, high, low, few-shot) beside it when they were asked.
import { facts, fill, fmt, h, pct, uid } from './dom.ts';
import { MapLayer } from './map/layer.ts';
import { MapCanvas } from './viewer.ts';
import { Legend } from './legend.ts';
import type { DetectResponse, GridMap } from './types.ts';

export interface Shown {
  name: string;
  image: ImageBitmap | null;
  response: DetectResponse;
}

/** The parts a dense-frequency detection reports with branches=true; `fewShot` only with stored references. */
const BRANCHES = ['full', 'high', 'low', 'fewShot'] as const;
const BRANCH_NAMES: Record<(typeof BRANCHES)[number], string> = { full: 'full', high: 'high', low: 'low', fewShot: 'few-shot (references)' };

export class ResultView {
  readonly el: HTMLElement;
  private readonly header = h('div', { class: 'result-header' });
  private readonly main = new MapCanvas('Image with anomaly overlay', 'overlay');
  private readonly legend = new Legend();
  private readonly slider: HTMLInputElement;
  private readonly sliderValue = h('output', { class: 'slider-value' });
  private readonly count = h('p', { class: 'region-count', 'data-testid': 'region-count', 'aria-live': 'polite' });
  private readonly table = h('div', { class: 'region-table' });
  private readonly branches = h('section', { class: 'branches', hidden: true, 'aria-label': 'Branch maps' });
  private readonly noMap = h('p', { class: 'hint', hidden: true }, 'The server returned no grid for this detection, so there is no map to draw.');
  private readonly mapArea: HTMLElement;
  private layer: MapLayer | null = null;
  private branchViews: Array<{ layer: MapLayer; canvas: MapCanvas }> = [];
  private shown: Shown | null = null;
  private pending = false;

  constructor() {
    const sliderId = uid('threshold');
    this.slider = h('input', { type: 'range', id: sliderId, min: 0, max: 1, step: 0.01, value: 0.5, 'data-testid': 'threshold-slider' });
    this.slider.addEventListener('input', () => this.schedule());
    this.sliderValue.htmlFor.add(sliderId);
    const reset = h('button', { type: 'button', class: 'secondary', onclick: () => this.resetThreshold() }, 'Back to the server threshold');
    const toggles = h(
      'fieldset',
      { class: 'toggles' },
      h('legend', {}, 'Show'),
      ...(['heat', 'contour', 'boxes'] as const).map((k) => {
        const box = h('input', { type: 'checkbox', checked: true, id: uid(`show-${k}`) });
        box.addEventListener('change', () => {
          this.main.layers[k] = box.checked;
          for (const b of this.branchViews) b.canvas.layers[k] = box.checked;
          this.redraw();
        });
        return h('label', { class: 'check', for: box.id }, box, { heat: ' heat map', contour: ' threshold contour', boxes: ' region boxes' }[k]);
      }),
    );
    this.mapArea = h(
      'div',
      { class: 'map-area' },
      h('div', { class: 'map-main' }, this.main.canvas),
      h(
        'div',
        { class: 'map-side' },
        this.legend.el,
        h(
          'div',
          { class: 'field slider' },
          h('label', { for: sliderId }, 'Threshold for regions and contour'),
          h('div', { class: 'row' }, this.slider, this.sliderValue),
          h('p', { class: 'hint' }, 'Recomputed in your browser from the returned grid (bilinear, without the server’s smoothing, so counts may differ a little from the server’s): no new request.'),
          reset,
        ),
        this.count,
        this.table,
        toggles,
      ),
    );
    this.el = h('section', { class: 'result', 'aria-label': 'Detection result', hidden: true }, this.header, this.noMap, this.mapArea, this.branches);
  }

  hide(): void {
    this.shown = null;
    this.el.hidden = true;
  }

  show(shown: Shown): void {
    this.shown = shown;
    const r = shown.response;
    this.el.hidden = false;
    this.renderHeader();
    this.main.canvas.setAttribute('aria-label', `${shown.name}: ${r.isAnomalous ? 'anomalous' : 'normal'}, score ${fmt(r.score)}, with the anomaly overlay`);
    const grid = r.map?.type === 'grid' ? r.map : null;
    this.noMap.hidden = grid !== null;
    this.mapArea.hidden = grid === null;
    this.layer = grid ? new MapLayer(grid, r.image.width, r.image.height) : null;
    for (const b of this.branchViews) b.canvas.dispose();
    this.branchViews = [];
    fill(this.branches);
    const grids = BRANCHES.map((b) => r.branches?.[b]).filter((b) => b?.map?.type === 'grid');
    this.branches.hidden = grids.length === 0;
    if (r.branches && grids.length) {
      this.branches.append(h('h3', {}, 'Branch maps (same scale and threshold)'));
      const row = h('div', { class: 'branch-row' });
      for (const name of BRANCHES) {
        const b = r.branches[name];
        if (b?.map?.type !== 'grid') continue;
        const canvas = new MapCanvas(`${BRANCH_NAMES[name]} branch map`, `branch-${name}`);
        canvas.layers = { ...this.main.layers };
        const layer = new MapLayer(b.map as GridMap, r.image.width, r.image.height);
        this.branchViews.push({ layer, canvas });
        row.append(h('figure', { class: 'branch' }, canvas.canvas, h('figcaption', {}, `${BRANCH_NAMES[name]} · score ${fmt(b.score)}`)));
      }
      this.branches.append(row);
    }
    this.resetThreshold();
  }

  private renderHeader(): void {
    const r = this.shown!.response;
    const verdict = r.isAnomalous ? 'anomalous' : 'normal';
    const details: Array<[string, string]> = [
      ['Score', fmt(r.score)],
      ['Threshold', `${fmt(r.threshold, 2)}${r.thresholdSource ? ` (${r.thresholdSource})` : ''}`],
      ['Method', r.method ?? 'ours'],
      ['Server regions', String(r.regions.length)],
      ['Image', `${r.image.width} × ${r.image.height} px`],
      ['Time', `${Math.round(r.timingsMs.total ?? 0)} ms`],
    ];
    fill(
      this.header,
      h('h3', { class: 'result-title' }, this.shown!.name, ' ', h('span', { class: `verdict verdict-${verdict}`, 'data-testid': 'verdict' }, verdict)),
      h('p', { class: 'summary', 'data-testid': 'summary' }, r.summary),
      facts(details, 'facts', true),
      r.model.warning ? h('p', { class: 'inline-warning' }, r.model.warning) : null,
    );
  }

  private resetThreshold(): void {
    if (!this.shown) return;
    this.slider.value = String(this.shown.response.threshold);
    this.apply();
  }

  /** Slider moves are applied once per frame. */
  private schedule(): void {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.apply();
    });
  }

  private apply(): void {
    const t = Number(this.slider.value);
    this.sliderValue.value = t.toFixed(2);
    this.legend.setThreshold(t);
    const layer = this.layer;
    if (!layer || !this.shown) return;
    layer.setThreshold(t);
    for (const b of this.branchViews) b.layer.setThreshold(t);
    const n = layer.regions.length;
    const score = this.shown.response.score;
    fill(
      this.count,
      h('strong', {}, `${n} region${n === 1 ? '' : 's'}`),
      ` above ${t.toFixed(2)}. At this threshold the image is `,
      h('strong', {}, score >= t ? 'anomalous' : 'normal'),
      ` (score ${fmt(score)}).`,
    );
    this.count.dataset.count = String(n);
    this.renderTable();
    this.redraw();
  }

  private renderTable(): void {
    const regions = this.layer?.regions ?? [];
    if (!regions.length) {
      fill(this.table);
      return;
    }
    const rows = regions.slice(0, 10).map((r, i) =>
      h(
        'tr',
        {},
        h('td', {}, String(i + 1)),
        h('td', {}, `${r.bbox.x},${r.bbox.y}`),
        h('td', {}, `${r.bbox.w}×${r.bbox.h}`),
        h('td', {}, pct(r.areaFraction)),
        h('td', {}, fmt(r.peak, 2)),
        h('td', {}, fmt(r.meanScore, 2)),
      ),
    );
    fill(
      this.table,
      h(
        'table',
        {},
        h('caption', {}, regions.length > 10 ? `The 10 highest of ${regions.length} regions` : 'Regions, highest peak first'),
        h('thead', {}, h('tr', {}, ...['#', 'x,y', 'w×h px', 'area', 'peak', 'mean'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, ...rows),
      ),
    );
  }

  private redraw(): void {
    if (this.layer) this.main.show(this.shown!.image, this.layer);
    for (const b of this.branchViews) b.canvas.show(this.shown!.image, b.layer, 0);
  }
}
