// A pino destination that keeps every log line, parsed, so tests can read what was logged.
export interface LogLine {
  level: number;
  msg?: string;
  reqId?: string;
  [key: string]: unknown;
}

export const LEVEL = { info: 30, warn: 40, error: 50 } as const;

export class LogCapture {
  readonly raw: string[] = [];

  write(line: string): void {
    this.raw.push(line);
  }

  get lines(): LogLine[] {
    return this.raw.map((l) => JSON.parse(l) as LogLine);
  }

  atOrAbove(level: number): LogLine[] {
    return this.lines.filter((l) => l.level >= level);
  }

  clear(): void {
    this.raw.length = 0;
  }
}
