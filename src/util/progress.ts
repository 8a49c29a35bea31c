// Progress on stderr, for the checkpoint download (bytes of one file: clip/checkpoint/
// download-progress.ts) and for evaluation and training runs (items over the whole run:
// createProgress below). On a terminal a line is redrawn in place at most every intervalMs;
// in a log file or pipe plain lines are written instead, so collected logs stay readable.
// No library: the two bars need a throttle, a carriage-return redraw and a duration format,
// about forty lines, and the usual packages (cli-progress, progress) bring their own
// terminal handling that does not do the plain-lines mode.

export interface ProgressStream {
  isTTY?: boolean;
  /** Terminal width; a redrawn line is cut to it, since a wrapped line cannot be redrawn with \r. */
  columns?: number;
  write(text: string): unknown;
}

/** m:ss or h:mm:ss. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/** Lets a redraw through at most once per interval. */
export class Throttle {
  private last = -Infinity;

  constructor(
    private readonly intervalMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** True (and the interval starts again) when it has passed since the last pass, or when forced. */
  pass(force = false): boolean {
    const t = this.now();
    if (!force && t - this.last < this.intervalMs) return false;
    this.last = t;
    return true;
  }

  /** The next pass() goes through. */
  reset(): void {
    this.last = -Infinity;
  }
}

/** The text cut to the stream's width, when it has one. */
export function fitLine(stream: ProgressStream, text: string): string {
  return stream.columns ? text.slice(0, Math.max(20, stream.columns - 1)) : text;
}

/** Carriage return, the text (cut to the terminal width), erase to the end of the line. */
export function redrawLine(stream: ProgressStream, text: string): void {
  stream.write(`\r${fitLine(stream, text)}\x1b[K`);
}

// ---------------------------------------------------------------------------------------------
// Items over a run (images evaluated, samples prepared)

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

/** e.g. `[########----------------]  45/151  30%  12.3 img/s  ETA 0:08`; rate in items per second. */
export function progressLine(done: number, total: number, rate: number, barWidth = 24): string {
  const fraction = total > 0 ? Math.min(1, done / total) : 1;
  const filled = Math.round(fraction * barWidth);
  const bar = `[${'#'.repeat(filled)}${'-'.repeat(barWidth - filled)}]`;
  const eta = rate > 0 ? formatDuration(Math.max(0, total - done) / rate) : '--:--';
  const counts = `${String(done).padStart(String(total).length)}/${total}`;
  return `${bar} ${counts} ${String(Math.floor(fraction * 100)).padStart(3)}%  ${rate.toFixed(1)} img/s  ETA ${eta}`;
}

/** A bar redrawn in place on a terminal; otherwise a line every 10 % and at the end. */
export function createProgress(options: ProgressOptions): Progress {
  const stream = options.stream ?? process.stderr;
  const now = options.now ?? Date.now;
  const throttle = new Throttle(options.intervalMs ?? 100, now);
  const tty = Boolean(stream.isTTY);
  const total = options.total;
  let done = 0;
  // The rate counts from the first finished item, so a slow model load does not skew the ETA.
  let firstAt: number | undefined;
  let firstDone = 0;
  let label = '';
  let lastDecile = 0;
  let lastPrinted = -1;
  let finished = false;

  const line = () => {
    const elapsed = firstAt === undefined ? 0 : now() - firstAt;
    const rate = done > firstDone && elapsed > 0 ? ((done - firstDone) * 1000) / elapsed : 0;
    return `${progressLine(done, total, rate)}  ${label}`.trimEnd();
  };
  const draw = (force: boolean) => {
    if (finished) return;
    if (tty) {
      if (throttle.pass(force)) redrawLine(stream, line());
      return;
    }
    const decile = total > 0 ? Math.floor((done / total) * 10) : 10;
    if (decile > lastDecile || (force && done !== lastPrinted)) {
      lastDecile = decile;
      lastPrinted = done;
      stream.write(`${fitLine(stream, line())}\n`);
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
      draw(true);
      if (tty) stream.write('\n');
      finished = true;
    },
  };
}
