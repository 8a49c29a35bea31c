// Figures of an evaluation: ROC curves (image and pixel level) and PRO curves (PRO vs FPR up to
// 0.3) drawn as SVG and rasterised to PNG with sharp (librsvg), plus captioned overlays of
// picked images. The curves themselves are computed in curves.ts.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import type { DecodedImage } from '../imaging/decode.ts';
import { renderOverlayPng } from '../imaging/heatmap.ts';
import type { Box } from '../imaging/overlay-marks.ts';
import { PRO_FPR_LIMIT, type Curve } from './curves.ts';
import type { CategoryEvaluation, ConfigurationEvaluation } from './evaluate.ts';

// ---------------------------------------------------------------------------------------------
// Line plots as SVG → PNG

export interface Series {
  name: string;
  curve: Curve;
}

export interface PlotSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  xMax: number;
  yMax?: number;
  series: Series[];
  /** Draw the chance line y = x (ROC). */
  diagonal?: boolean;
}

/** Tableau 10: distinct at a glance; after ten series the dash pattern changes too. */
const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];
const DASHES = ['', '6 3', '2 3', '8 3 2 3'];

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
}

/** A round tick step giving five or six intervals. */
function tickStep(max: number): number {
  const raw = max / 6;
  const power = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= raw * 0.999)!;
}

export function linePlotSvg(spec: PlotSpec): string {
  const yMax = spec.yMax ?? 1;
  const left = 64;
  const top = 40;
  const plotW = 440;
  const plotH = 360;
  const legendX = left + plotW + 24;
  const rowH = 18;
  const width = legendX + 300;
  const height = Math.max(top + plotH + 56, top + 8 + spec.series.length * rowH + 16);
  const px = (x: number) => left + (Math.min(x, spec.xMax) / spec.xMax) * plotW;
  const py = (y: number) => top + plotH - (Math.min(y, yMax) / yMax) * plotH;
  const font = 'font-family="DejaVu Sans, Arial, Helvetica, sans-serif"';
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="${left + plotW / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold" ${font}>${escapeXml(spec.title)}</text>`,
  ];
  const ticks = (max: number) => {
    const step = tickStep(max);
    const values: number[] = [];
    for (let k = 0; k * step <= max * (1 + 1e-9); k++) values.push(+(k * step).toPrecision(6));
    return { values, digits: Math.min(3, (String(+step.toPrecision(6)).split('.')[1] ?? '').length) };
  };
  const xt = ticks(spec.xMax);
  const yt = ticks(yMax);
  for (const v of xt.values) {
    const x = px(v);
    parts.push(`<line x1="${x}" y1="${top}" x2="${x}" y2="${top + plotH}" stroke="#e6e6e6"/>`);
    parts.push(`<text x="${x}" y="${top + plotH + 18}" text-anchor="middle" font-size="12" ${font}>${v.toFixed(xt.digits)}</text>`);
  }
  for (const v of yt.values) {
    const y = py(v);
    parts.push(`<line x1="${left}" y1="${y}" x2="${left + plotW}" y2="${y}" stroke="#e6e6e6"/>`);
    parts.push(`<text x="${left - 8}" y="${y + 4}" text-anchor="end" font-size="12" ${font}>${v.toFixed(yt.digits)}</text>`);
  }
  parts.push(`<rect x="${left}" y="${top}" width="${plotW}" height="${plotH}" fill="none" stroke="#333333"/>`);
  parts.push(`<text x="${left + plotW / 2}" y="${top + plotH + 42}" text-anchor="middle" font-size="13" ${font}>${escapeXml(spec.xLabel)}</text>`);
  parts.push(
    `<text x="18" y="${top + plotH / 2}" text-anchor="middle" font-size="13" transform="rotate(-90 18 ${top + plotH / 2})" ${font}>${escapeXml(spec.yLabel)}</text>`,
  );
  if (spec.diagonal) {
    const end = Math.min(spec.xMax, yMax);
    parts.push(`<line x1="${px(0)}" y1="${py(0)}" x2="${px(end)}" y2="${py(end)}" stroke="#999999" stroke-dasharray="4 4"/>`);
  }
  spec.series.forEach((s, i) => {
    const color = PALETTE[i % PALETTE.length];
    const dash = DASHES[Math.floor(i / PALETTE.length) % DASHES.length];
    const dashAttr = dash ? ` stroke-dasharray="${dash}"` : '';
    const points = s.curve.x.map((x, k) => `${px(x).toFixed(2)},${py(s.curve.y[k]).toFixed(2)}`).join(' ');
    parts.push(`<polyline points="${points}" fill="none" stroke="${color}" stroke-width="2"${dashAttr}/>`);
    const ly = top + 8 + i * rowH;
    parts.push(`<line x1="${legendX}" y1="${ly}" x2="${legendX + 22}" y2="${ly}" stroke="${color}" stroke-width="3"${dashAttr}/>`);
    parts.push(`<text x="${legendX + 28}" y="${ly + 4}" font-size="12" ${font}>${escapeXml(s.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}

export function svgToPng(svg: string): Promise<Buffer> {
  return sharp(Buffer.from(svg)).png().toBuffer();
}

export async function writePlot(file: string, spec: PlotSpec): Promise<void> {
  await writeFile(file, await svgToPng(linePlotSvg(spec)));
}

/**
 * The three figures of a configuration, one line per category: image ROC, pixel ROC and PRO
 * (a figure with no curve, e.g. pixel ROC without masks, is not written). Returns the files.
 */
export async function writeConfigurationPlots(dir: string, evaluation: ConfigurationEvaluation, titleSuffix = ''): Promise<string[]> {
  const pct = (v: number | null) => (v === null ? '–' : (v * 100).toFixed(1));
  const series = (pick: (c: CategoryEvaluation) => Curve | null, metricName: string, metric: (c: CategoryEvaluation) => number | null): Series[] =>
    evaluation.categories.flatMap((c) => {
      const curve = pick(c);
      return curve ? [{ name: `${c.category.id} (${metricName} ${pct(metric(c))})`, curve }] : [];
    });
  const figures: Array<{ file: string } & PlotSpec> = [
    {
      file: 'image-roc.png',
      title: `Image ROC${titleSuffix}`,
      xLabel: 'false positive rate',
      yLabel: 'true positive rate',
      xMax: 1,
      diagonal: true,
      series: series((c) => c.curves.imageRoc, 'AUROC', (c) => c.metrics.imageAuroc),
    },
    {
      file: 'pixel-roc.png',
      title: `Pixel ROC${titleSuffix}`,
      xLabel: 'false positive rate (pixels)',
      yLabel: 'true positive rate (pixels)',
      xMax: 1,
      diagonal: true,
      series: series((c) => c.curves.pixelRoc, 'AUROC', (c) => c.metrics.pixelAuroc),
    },
    {
      file: 'pro.png',
      title: `PRO up to FPR ${PRO_FPR_LIMIT}${titleSuffix}`,
      xLabel: 'false positive rate (pixels)',
      yLabel: 'per-region overlap',
      xMax: PRO_FPR_LIMIT,
      series: series((c) => c.curves.pro, 'AUPRO', (c) => c.metrics.aupro),
    },
  ];
  const written: string[] = [];
  for (const { file, ...spec } of figures) {
    if (spec.series.length === 0) continue;
    await mkdir(dir, { recursive: true });
    await writePlot(join(dir, file), spec);
    written.push(join(dir, file));
  }
  return written;
}

// ---------------------------------------------------------------------------------------------
// Overlays

/** The overlay (scale, contour, boxes, legend at `threshold`) with a caption bar above it (the image pixels stay uncovered). */
export async function captionedOverlayPng(image: DecodedImage, map: Float32Array, caption: string, style: { threshold: number; regions?: readonly { bbox: Box }[] }): Promise<Buffer> {
  const overlay = await renderOverlayPng(image, map, { threshold: style.threshold, regions: (style.regions ?? []).map((r) => r.bbox) });
  const bar = 22;
  const svg =
    `<svg xmlns="http://www.w3.org/2000/svg" width="${image.width}" height="${bar}">` +
    `<text x="4" y="15" font-size="13" fill="#ffffff" font-family="DejaVu Sans, Arial, sans-serif">${escapeXml(caption)}</text></svg>`;
  return sharp(overlay)
    .extend({ top: bar, background: '#000000' })
    .composite([{ input: Buffer.from(svg), top: 0, left: 0 }])
    .png()
    .toBuffer();
}
