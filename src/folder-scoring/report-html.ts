// report.html of a scored folder: the most anomalous images with their overlays, as one file
// that opens offline: the overlays are embedded as data: URIs, the style is inline, and there
// is no script and no link to anything outside the file.
import type { FolderRow, FolderSummary } from './files.ts';

export interface TopImage {
  rank: number;
  row: FolderRow;
  /** The overlay PNG (the service's own rendering, map=overlay), base64. */
  overlayPng: string;
  width: number;
  height: number;
  regions: number;
  summary: string;
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const STYLE = `body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;background:#fafafa}
h1{font-size:20px;margin:0 0 8px}.meta{color:#555;margin:0 0 4px}.warn{color:#a40;font-weight:600}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));gap:16px;margin-top:16px}
figure{margin:0;background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px}
figure.anomalous{border-color:#c33}img{width:100%;height:auto;display:block;image-rendering:auto}
figcaption{margin-top:6px;word-break:break-all}.score{font-weight:600}.yes{color:#c33}.no{color:#373}`;

export function folderReportHtml(summary: FolderSummary, top: readonly TopImage[]): string {
  const meta = [
    `${summary.scored} of ${summary.images} images scored (${summary.failed} failed), ${summary.anomalous} at or above the threshold ${summary.threshold}`,
    `category “${summary.category}”, method ${summary.method}, model ${summary.model.id}`,
    summary.batches ? `scored mutually in ${summary.batches.sizes.length} batch(es) of ${summary.batches.sizes.join(', ')} images (at most ${summary.batches.limit}); scores compare within a batch` : '',
    `folder ${summary.data}, ${summary.createdAt}`,
  ].filter(Boolean);
  const figures = top.map((t) => {
    const verdict = t.row.isAnomalous ? '<span class="yes">anomalous</span>' : '<span class="no">normal</span>';
    return `<figure class="${t.row.isAnomalous ? 'anomalous' : 'normal'}">
<img alt="overlay of ${escapeHtml(t.row.path)}" width="${t.width}" height="${t.height}" src="data:image/png;base64,${t.overlayPng}">
<figcaption>#${t.rank} <span class="score">${(t.row.score ?? 0).toFixed(4)}</span> ${verdict}${t.row.batch !== undefined ? ` · batch ${t.row.batch}` : ''}<br>${escapeHtml(t.row.path)}<br><small>${escapeHtml(t.summary)}</small></figcaption>
</figure>`;
  });
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(`Most anomalous: ${summary.category} (${summary.method})`)}</title>
<meta name="viewport" content="width=device-width,initial-scale=1"><style>${STYLE}</style></head>
<body><h1>${escapeHtml(`The ${top.length} most anomalous images: ${summary.category}`)}</h1>
${summary.warning ? `<p class="warn">${escapeHtml(summary.warning)}</p>\n` : ''}${meta.map((m) => `<p class="meta">${escapeHtml(m)}</p>`).join('\n')}
<p class="meta">Every score is in scores.csv and scores.json next to this file.</p>
<div class="grid">
${figures.join('\n')}
</div></body></html>
`;
}
