// What every benchmark reports: one figure per measured thing, with its median and p95 over
// the runs, and (in `npm run bench`) the same run's MatMul floor and the ratio to it.
import { cpus, loadavg } from 'node:os';

export interface Figure {
  name: string;
  median_ms: number;
  p95_ms: number;
  floor_ms?: number;
  ratio_to_floor?: number;
  /** Free-form context (shapes, settings) printed in the table, not in the JSON line. */
  note?: string;
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** Median and p95 of `runs` timed calls after `warmup` untimed ones. */
export async function time(name: string, runs: number, fn: () => unknown, warmup = 1, note?: string): Promise<Figure> {
  for (let i = 0; i < warmup; i++) await fn();
  const ms: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t = performance.now();
    await fn();
    ms.push(performance.now() - t);
  }
  ms.sort((a, b) => a - b);
  const figure: Figure = { name, median_ms: round(quantile(ms, 0.5)), p95_ms: round(quantile(ms, 0.95)) };
  if (note) figure.note = note;
  return figure;
}

/**
 * `time` for several calls measured in turn, one of each per round (after `warmup` rounds), so
 * that each sees the same machine load: the figures of two of them compare within one run.
 */
export async function timeAlternating(names: readonly string[], runs: number, fns: ReadonlyArray<() => unknown>, warmup = 1): Promise<Figure[]> {
  for (let i = 0; i < warmup; i++) for (const fn of fns) await fn();
  const ms = fns.map(() => [] as number[]);
  for (let r = 0; r < runs; r++) {
    for (let f = 0; f < fns.length; f++) {
      const t = performance.now();
      await fns[f]();
      ms[f].push(performance.now() - t);
    }
  }
  return ms.map((m, f) => {
    m.sort((a, b) => a - b);
    return { name: names[f], median_ms: round(quantile(m, 0.5)), p95_ms: round(quantile(m, 0.95)) };
  });
}

export function round(v: number): number {
  return Math.round(v * 100) / 100;
}

/** The machine and its load: figures measured under load are only comparable as ratios. */
export function machineLine(): string {
  const [l1, l5, l15] = loadavg();
  return `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, load average ${l1.toFixed(2)} ${l5.toFixed(2)} ${l15.toFixed(2)}`;
}

/** A table for people, then one JSON line per figure for tools. */
export function report(figures: Figure[]): void {
  const width = Math.max(20, ...figures.map((f) => f.name.length));
  console.log(`${'figure'.padEnd(width)}  median ms     p95 ms   floor ms   ratio`);
  for (const f of figures) {
    const cells = [f.median_ms, f.p95_ms].map((v) => v.toFixed(2).padStart(9));
    const floor = f.floor_ms === undefined ? '         -' : f.floor_ms.toFixed(2).padStart(10);
    const ratio = f.ratio_to_floor === undefined ? '      -' : f.ratio_to_floor.toFixed(2).padStart(7);
    console.log(`${f.name.padEnd(width)}  ${cells.join('  ')} ${floor} ${ratio}${f.note ? `   ${f.note}` : ''}`);
  }
  for (const f of figures) {
    const { note: _note, ...rest } = f;
    console.log(JSON.stringify({ name: rest.name, median_ms: rest.median_ms, p95_ms: rest.p95_ms, floor_ms: rest.floor_ms ?? null, ratio_to_floor: rest.ratio_to_floor ?? null }));
  }
}
