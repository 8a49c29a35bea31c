// The calibration histogram: the m normal scores in bins, with the threshold as a line.

export interface HistogramInput {
  scores: number[];
  threshold: number;
}

/** Bin edges spanning the scores and the threshold, with a little room either side. */
export function bins(scores: number[], threshold: number, count = 20): { lo: number; hi: number; counts: number[] } {
  const all = [...scores, threshold];
  let lo = Math.min(...all);
  let hi = Math.max(...all);
  const pad = Math.max((hi - lo) * 0.08, 0.005);
  lo = Math.max(0, lo - pad);
  hi = Math.min(1, hi + pad);
  if (hi <= lo) hi = lo + 0.01;
  const counts = new Array<number>(count).fill(0);
  for (const s of scores) counts[Math.min(count - 1, Math.max(0, Math.floor(((s - lo) / (hi - lo)) * count)))]++;
  return { lo, hi, counts };
}

export function drawHistogram(canvas: HTMLCanvasElement, { scores, threshold }: HistogramInput): void {
  const dpr = devicePixelRatio || 1;
  const cssW = canvas.clientWidth || 560;
  const cssH = Math.round(cssW * 0.45);
  canvas.width = Math.round(cssW * dpr);
  canvas.height = Math.round(cssH * dpr);
  const ctx = canvas.getContext('2d')!;
  ctx.scale(dpr, dpr);
  ctx.clearRect(0, 0, cssW, cssH);
  const { lo, hi, counts } = bins(scores, threshold);
  const max = Math.max(1, ...counts);
  const left = 36;
  const right = 28;
  const top = 22;
  const bottom = 30;
  const pw = cssW - left - right;
  const ph = cssH - top - bottom;
  const xOf = (v: number) => left + ((v - lo) / (hi - lo)) * pw;
  ctx.font = '12px system-ui, sans-serif';
  ctx.fillStyle = '#333';
  ctx.strokeStyle = '#999';
  ctx.lineWidth = 1;
  // Axes and ticks.
  ctx.beginPath();
  ctx.moveTo(left, top);
  ctx.lineTo(left, top + ph);
  ctx.lineTo(left + pw, top + ph);
  ctx.stroke();
  ctx.textAlign = 'center';
  ctx.textBaseline = 'top';
  for (let i = 0; i <= 4; i++) {
    const v = lo + ((hi - lo) * i) / 4;
    ctx.fillText(v.toFixed(3), xOf(v), top + ph + 6);
  }
  ctx.textAlign = 'right';
  ctx.textBaseline = 'middle';
  ctx.fillText(String(max), left - 6, top);
  ctx.fillText('0', left - 6, top + ph);
  // Bars.
  const bw = pw / counts.length;
  ctx.fillStyle = '#4a78c2';
  counts.forEach((c, i) => {
    const bh = (c / max) * ph;
    ctx.fillRect(left + i * bw + 1, top + ph - bh, Math.max(1, bw - 2), bh);
  });
  // Threshold.
  const tx = xOf(threshold);
  ctx.strokeStyle = '#c0142c';
  ctx.lineWidth = 2;
  ctx.setLineDash([5, 3]);
  ctx.beginPath();
  ctx.moveTo(tx, top - 4);
  ctx.lineTo(tx, top + ph);
  ctx.stroke();
  ctx.setLineDash([]);
  ctx.fillStyle = '#c0142c';
  ctx.textAlign = tx > left + pw * 0.7 ? 'right' : 'left';
  ctx.textBaseline = 'bottom';
  ctx.fillText(`threshold ${threshold.toFixed(3)}`, tx + (ctx.textAlign === 'right' ? -4 : 4), top - 6);
}
