// scores.csv and scores.json of a scored folder: one row per image, most anomalous first.
export interface FolderRow {
  /** Path under the scored folder, with `/`. */
  path: string;
  /** null when the image could not be scored (see `error`). */
  score: number | null;
  isAnomalous: boolean | null;
  threshold: number;
  method: string;
  /** Why the image has no score (it does not decode, is too large…); null when scored. */
  error: string | null;
  /** Batch-only methods: which mutual batch (1, 2, …) scored the image; scores compare within a batch. */
  batch?: number;
}

export interface FolderSummary {
  tool: 'clip-anomaly-score';
  version: 1;
  createdAt: string;
  command?: string;
  data: string;
  category: string;
  method: string;
  threshold: number;
  model: { id: string; generatedRandomModel: boolean };
  warning?: string;
  images: number;
  scored: number;
  anomalous: number;
  failed: number;
  /** Batch-only methods: the bound and each batch's size. */
  batches?: { limit: number; sizes: number[] };
  seconds: number;
}

const quote = (s: string) => (/[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);

export function scoresCsv(rows: readonly FolderRow[]): string {
  const lines = ['path,score,isAnomalous,threshold,method,error'];
  for (const r of rows) {
    lines.push([quote(r.path), r.score === null ? '' : r.score.toFixed(6), r.isAnomalous === null ? '' : String(r.isAnomalous), r.threshold, quote(r.method), quote(r.error ?? '')].join(','));
  }
  return `${lines.join('\n')}\n`;
}

export function scoresJson(summary: FolderSummary, rows: readonly FolderRow[]): string {
  return `${JSON.stringify({ ...summary, rows }, null, 2)}\n`;
}
