// Progress of an evaluation run on stderr: a bar with rate and ETA redrawn in place when
// stderr is a terminal, plain lines (every 10 % and at the end) when it is a log file or pipe.
// The download bar in src/clip/download-progress.ts counts bytes of one file; this one counts
// images over the whole run, so it is separate.

export interface ProgressStream {
  isTTY?: boolean;
  columns?: number;
  write(text: string): unknown;
}

export interface ProgressOptions {
  total: number;
  stream?: ProgressStream;
  /** Redraw the bar at most this often. */
  intervalMs?: number;
  now?: () => number;
}

export interface Progress {
  /** What is being worked on, shown after the counts (e.g. "c1 metal_plate"). */
  status(text: string): void;
  /** `n` more items done. */
  tick(n?: number): void;
  /** Final line; the bar is not redrawn afterwards. */
  done(): void;
}

/** m:ss or h:mm:ss. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/** e.g. `[########----------------]  45/151  30%  12.3 img/s  ETA 0:08`; rate in items per second. */
export function progressLine(done: number, total: number, rate: number, barWidth = 24): string {
  const fraction = total > 0 ? Math.min(1, done / total) : 1;
  const filled = Math.round(fraction * barWidth);
  const bar = `[${'#'.repeat(filled)}${'-'.repeat(barWidth - filled)}]`;
  const eta = rate > 0 ? formatDuration(Math.max(0, total - done) / rate) : '--:--';
  const counts = `${String(done).padStart(String(total).length)}/${total}`;
  return `${bar} ${counts} ${String(Math.floor(fraction * 100)).padStart(3)}%  ${rate.toFixed(1)} img/s  ETA ${eta}`;
}

export function createProgress(options: ProgressOptions): Progress {
  const stream = options.stream ?? process.stderr;
  const now = options.now ?? Date.now;
  const intervalMs = options.intervalMs ?? 100;
  const tty = Boolean(stream.isTTY);
  const total = options.total;
  let done = 0;
  // The rate counts from the first finished item, so a slow model load does not skew the ETA.
  let firstAt: number | undefined;
  let firstDone = 0;
  let label = '';
  let lastDrawn = -Infinity;
  let lastDecile = 0;
  let lastPrinted = -1;
  let finished = false;

  const line = () => {
    const elapsed = firstAt === undefined ? 0 : now() - firstAt;
    const rate = done > firstDone && elapsed > 0 ? ((done - firstDone) * 1000) / elapsed : 0;
    const text = `${progressLine(done, total, rate)}  ${label}`.trimEnd();
    // Never wrap: a wrapped line cannot be redrawn with \r.
    return stream.columns ? text.slice(0, Math.max(20, stream.columns - 1)) : text;
  };
  const draw = (force: boolean) => {
    if (finished) return;
    if (tty) {
      const t = now();
      if (!force && t - lastDrawn < intervalMs) return;
      lastDrawn = t;
      stream.write(`\r${line()}\x1b[K`);
    } else {
      const decile = total > 0 ? Math.floor((done / total) * 10) : 10;
      if (decile > lastDecile || (force && done !== lastPrinted)) {
        lastDecile = decile;
        lastPrinted = done;
        stream.write(`${line()}\n`);
      }
    }
  };

  return {
    status(text) {
      label = text;
      if (tty) draw(false);
    },
    tick(n = 1) {
      if (firstAt === undefined) {
        firstAt = now();
        firstDone = n;
      }
      done += n;
      draw(false);
    },
    done() {
      if (finished) return;
      if (tty) {
        draw(true);
        stream.write('\n');
      } else {
        draw(true);
      }
      finished = true;
    },
  };
}
