// Shows download progress: a bar on stderr (name, percent, MB/s, ETA) redrawn at most ~10
// times a second when stderr is a terminal; otherwise one log line per file at start and end,
// so logs collected from a container stay readable. The drawing is util/progress.ts's.
import { formatDuration, redrawLine, Throttle, type ProgressStream } from '../../util/progress.ts';

export interface DownloadProgressEvent {
  file: string;
  received: number;
  total?: number;
}

export interface DownloadProgress {
  start(file: string, resumedFrom: number, total: number | undefined): void;
  update(file: string, received: number, total: number | undefined): void;
  end(file: string, size: number): void;
}

export interface DownloadProgressOptions {
  onProgress?: (event: DownloadProgressEvent) => void;
  log: (msg: string) => void;
  /** Where the bar goes; it is drawn only when this is a TTY and no onProgress is given. */
  stream?: ProgressStream;
  intervalMs?: number;
  now?: () => number;
}

export function createDownloadProgress(options: DownloadProgressOptions): DownloadProgress {
  const { onProgress, log } = options;
  const stream = options.stream ?? process.stderr;
  const now = options.now ?? Date.now;
  const throttle = new Throttle(options.intervalMs ?? 100, now);
  const drawBar = Boolean(stream.isTTY) && !onProgress;

  let startedAt = 0;
  let startBytes = 0;

  const show = (file: string, received: number, total: number | undefined): void => {
    onProgress?.({ file, received, total });
    if (drawBar) redrawLine(stream, progressLine(file, received, total, startBytes, now() - startedAt));
  };

  return {
    start(file, resumedFrom, total) {
      startedAt = now();
      startBytes = resumedFrom;
      throttle.reset();
      if (!drawBar) {
        const resumed = resumedFrom > 0 ? `, resuming at ${megabytes(resumedFrom)}` : '';
        log(`Downloading ${file} (${total === undefined ? 'size unknown' : megabytes(total)}${resumed})`);
      }
      show(file, resumedFrom, total);
    },
    update(file, received, total) {
      if (throttle.pass()) show(file, received, total);
    },
    end(file, size) {
      show(file, size, size);
      const seconds = Math.max(now() - startedAt, 1) / 1000;
      if (drawBar) stream.write('\n');
      else log(`Downloaded ${file} (${megabytes(size)} in ${seconds.toFixed(1)} s, ${rate(size - startBytes, seconds)})`);
    },
  };
}

/** e.g. `model.safetensors  42%  251.3/598.6 MB  35.2 MB/s  ETA 0:10`. */
export function progressLine(
  file: string,
  received: number,
  total: number | undefined,
  startBytes: number,
  elapsedMs: number,
): string {
  const seconds = Math.max(elapsedMs, 1) / 1000;
  const speed = (received - startBytes) / seconds;
  if (total === undefined || total === 0) return `${file}  ${megabytes(received)}  ${rate(received - startBytes, seconds)}`;
  const percent = Math.min(100, Math.floor((received / total) * 100));
  const eta = speed > 0 ? formatDuration((total - received) / speed) : '--:--';
  const sizes = `${(received / 1e6).toFixed(1)}/${megabytes(total)}`;
  return `${file}  ${String(percent).padStart(3)}%  ${sizes}  ${rate(received - startBytes, seconds)}  ETA ${eta}`;
}

function megabytes(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

function rate(bytes: number, seconds: number): string {
  return `${(bytes / 1e6 / seconds).toFixed(1)} MB/s`;
}
