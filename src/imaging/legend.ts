// The colour legend of map=overlay: a small panel in the bottom-right corner with the fixed
// scale as a bar, tick marks at 0, the threshold and 1, and their values as text. Bar and ticks
// are drawn into the overlay's buffer directly (exact colours, no font needed); only the text
// goes through sharp's SVG rendering, and is left out where no font can be found.
import sharp from 'sharp';
import { scaleIndex, scaleTable, type Rgb } from './colormap.ts';

export interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface LegendLayout {
  panel: Rect;
  bar: Rect;
  /** x of the ticks at 0, the threshold and 1. */
  ticks: [number, number, number];
  tickTop: number;
  tickBottom: number;
  /** Text baseline and size; absent: the image is too small for text. */
  text?: { baseline: number; size: number };
}

const TICK_COLOUR: Rgb = [255, 255, 255];
const PANEL_COLOUR: Rgb = [0, 0, 0];
const PANEL_WEIGHT = 154; // of 256: dark enough for white text, the image still shows

/** Where the legend goes on a width × height image; undefined when it has no room (< 48 px wide). */
export function legendLayout(width: number, height: number, threshold: number): LegendLayout | undefined {
  // Grows with the image so it stays legible on a 7000 px photo, and stays small on a thumbnail.
  const s = Math.max(1, Math.min(4, Math.round(Math.min(width, height) / 400)));
  const margin = 4 * s;
  const w = Math.min(140 * s, width - 2 * margin);
  if (w < 48) return undefined;
  const withText = 34 * s <= height / 2;
  const h = withText ? 34 * s : 20 * s;
  if (h > height / 2) return undefined;
  const panel = { x: width - margin - w, y: height - margin - h, w, h };
  const pad = 6 * s;
  const bar = { x: panel.x + pad, y: panel.y + 5 * s, w: w - 2 * pad, h: 8 * s };
  const at = (v: number) => bar.x + Math.round(v * (bar.w - 1));
  const t = Math.min(1, Math.max(0, threshold));
  return {
    panel,
    bar,
    ticks: [at(0), at(t), at(1)],
    tickTop: bar.y + bar.h,
    tickBottom: bar.y + bar.h + 4 * s,
    text: withText ? { baseline: panel.y + 29 * s, size: 10 * s } : undefined,
  };
}

/** Draws the legend into interleaved RGB pixels in place (width × height). */
export async function drawLegend(rgb: Uint8Array, width: number, height: number, threshold: number): Promise<void> {
  const layout = legendLayout(width, height, threshold);
  if (!layout) return;
  const { panel, bar, ticks } = layout;
  fillRect(rgb, width, panel, PANEL_COLOUR, PANEL_WEIGHT);
  const table = scaleTable(threshold);
  for (let x = 0; x < bar.w; x++) {
    const k = scaleIndex(x / (bar.w - 1)) * 3;
    fillRect(rgb, width, { x: bar.x + x, y: bar.y, w: 1, h: bar.h }, [table.rgb[k], table.rgb[k + 1], table.rgb[k + 2]]);
  }
  const tick = Math.max(1, Math.round(bar.h / 8));
  for (const x of ticks) fillRect(rgb, width, { x, y: layout.tickTop, w: tick, h: layout.tickBottom - layout.tickTop }, TICK_COLOUR);
  // The threshold tick also crosses the bar, where the boundary colour is.
  fillRect(rgb, width, { x: ticks[1], y: bar.y, w: tick, h: bar.h }, TICK_COLOUR);
  if (layout.text && (await fontsAvailable())) await drawText(rgb, width, layout, threshold);
}

function fillRect(rgb: Uint8Array, width: number, r: Rect, c: Rgb, weight = 256): void {
  for (let y = r.y; y < r.y + r.h; y++) {
    for (let x = r.x; x < r.x + r.w; x++) {
      const i = (y * width + x) * 3;
      for (let k = 0; k < 3; k++) rgb[i + k] = (c[k] * weight + rgb[i + k] * (256 - weight) + 128) >> 8;
    }
  }
}

/** The tick values as white text under the ticks, rendered by sharp and blended in by its alpha. */
async function drawText(rgb: Uint8Array, width: number, layout: LegendLayout, threshold: number): Promise<void> {
  const { panel, ticks, text } = layout;
  if (!text) return;
  const local = (x: number) => x - panel.x;
  const label = (x: number, anchor: string, value: string) =>
    `<text x="${local(x)}" y="${text.baseline - panel.y}" text-anchor="${anchor}">${value}</text>`;
  const svg =
    `<svg xmlns="http://www.w3.org/2000/svg" width="${panel.w}" height="${panel.h}">` +
    `<g font-family="DejaVu Sans, Arial, sans-serif" font-size="${text.size}" fill="#ffffff">` +
    label(ticks[0], 'start', '0') +
    label(ticks[1], 'middle', threshold.toFixed(2)) +
    label(ticks[2], 'end', '1') +
    `</g></svg>`;
  const alpha = await renderAlpha(svg);
  if (!alpha) return;
  for (let y = 0; y < panel.h; y++) {
    for (let x = 0; x < panel.w; x++) {
      const a = alpha[y * panel.w + x];
      if (a === 0) continue;
      const i = ((panel.y + y) * width + panel.x + x) * 3;
      for (let k = 0; k < 3; k++) rgb[i + k] = (255 * a + rgb[i + k] * (255 - a) + 127) / 255;
    }
  }
}

/** The SVG's alpha channel, one byte per pixel; undefined when rendering fails. */
async function renderAlpha(svg: string): Promise<Uint8Array | undefined> {
  try {
    return await sharp(Buffer.from(svg)).ensureAlpha().extractChannel(3).raw().toBuffer();
  } catch {
    return undefined;
  }
}

let fonts: Promise<boolean> | undefined;

/**
 * Whether sharp can draw text here. Asked of sharp itself, by drawing a glyph once: `fc-list`
 * may be missing where sharp's bundled fontconfig finds fonts, and a slim container may have
 * neither (then the legend is the bar and the ticks alone).
 */
export function fontsAvailable(): Promise<boolean> {
  fonts ??= renderAlpha(
    '<svg xmlns="http://www.w3.org/2000/svg" width="24" height="24"><text x="2" y="20" font-size="20" font-family="DejaVu Sans, Arial, sans-serif">0</text></svg>',
  ).then((a) => Boolean(a?.some((v) => v > 0)));
  return fonts;
}
