// The colour legend: the fixed scale from 0 to 1 with the threshold marked, and what the
// contour and boxes mean (their colours are viewer.ts's, repeated in styles.css).
import { h } from './dom.ts';
import { colourAt, css } from './map/colour-scale.ts';

export class Legend {
  readonly el: HTMLElement;
  private readonly bar: HTMLCanvasElement;
  private readonly thresholdLabel: HTMLSpanElement;
  private readonly marker: HTMLSpanElement;

  constructor() {
    this.bar = h('canvas', { class: 'legend-bar', width: 512, height: 1, 'aria-hidden': 'true' });
    this.thresholdLabel = h('span', {}, '');
    this.marker = h('span', { class: 'legend-marker', 'aria-hidden': 'true' });
    this.el = h(
      'figure',
      { class: 'legend', 'aria-label': 'Colour scale' },
      h('div', { class: 'legend-scale' }, this.bar, this.marker),
      h('div', { class: 'legend-ticks', 'aria-hidden': 'true' }, h('span', {}, '0 normal'), h('span', {}, '1 anomalous')),
      h(
        'figcaption',
        {},
        'Fixed scale, the same on every image: blue is normal (0), yellow is the threshold (',
        this.thresholdLabel,
        '), red is above it. ',
        h('span', { class: 'swatch swatch-line', 'aria-hidden': 'true' }),
        ' threshold contour, ',
        h('span', { class: 'swatch swatch-box', 'aria-hidden': 'true' }),
        ' regions above it.',
      ),
    );
  }

  setThreshold(t: number): void {
    const ctx = this.bar.getContext('2d')!;
    const w = this.bar.width;
    for (let x = 0; x < w; x++) {
      ctx.fillStyle = css(colourAt(x / (w - 1), t));
      ctx.fillRect(x, 0, 1, 1);
    }
    this.thresholdLabel.textContent = t.toFixed(2);
    this.marker.style.left = `${t * 100}%`;
    this.marker.textContent = t.toFixed(2);
  }
}
