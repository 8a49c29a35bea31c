import { describe, expect, it } from 'vitest';
import { createDownloadProgress, progressLine as downloadLine } from '../../src/clip/checkpoint/download-progress.ts';
import { createProgress, fitLine, Throttle } from '../../src/util/progress.ts';

describe('Throttle', () => {
  it('passes once per interval, always when forced, and again after a reset', () => {
    let t = 0;
    const th = new Throttle(100, () => t);
    expect(th.pass()).toBe(true);
    t = 50;
    expect(th.pass()).toBe(false);
    expect(th.pass(true)).toBe(true); // and counts from 50
    t = 120;
    expect(th.pass()).toBe(false);
    t = 150;
    expect(th.pass()).toBe(true);
    th.reset();
    expect(th.pass()).toBe(true);
  });
});

describe('run progress', () => {
  it('writes plain lines every 10 % and at the end when not on a terminal, cut to a known width', () => {
    const lines: string[] = [];
    const p = createProgress({ total: 20, stream: { isTTY: false, columns: 40, write: (s: string) => lines.push(s) }, now: () => 0 });
    for (let i = 0; i < 20; i++) p.tick();
    p.done();
    expect(lines).toHaveLength(10);
    expect(lines.every((l) => l.endsWith('\n') && l.length <= 40)).toBe(true);
    expect(fitLine({ write: () => 0 }, 'x'.repeat(500))).toHaveLength(500);
  });
});

describe('download progress', () => {
  it('formats bytes, rate and ETA', () => {
    expect(downloadLine('model.safetensors', 251.3e6, 598.6e6, 0, 7140)).toBe('model.safetensors   41%  251.3/598.6 MB  35.2 MB/s  ETA 0:10');
    expect(downloadLine('x.bin', 5e6, undefined, 0, 1000)).toBe('x.bin  5.0 MB  5.0 MB/s');
  });

  it('redraws a bar on a terminal at most every interval, and logs start and end otherwise', () => {
    let t = 0;
    const out: string[] = [];
    const bar = createDownloadProgress({ log: () => {}, stream: { isTTY: true, write: (s: string) => out.push(s) }, now: () => t, intervalMs: 100 });
    bar.start('w.bin', 0, 1000);
    bar.update('w.bin', 10, 1000); // the first update after start always shows
    t = 50;
    bar.update('w.bin', 20, 1000); // too soon
    t = 200;
    bar.update('w.bin', 500, 1000);
    bar.end('w.bin', 1000);
    expect(out.filter((s) => s.startsWith('\r'))).toHaveLength(4);
    expect(out.at(-1)).toBe('\n');

    const logged: string[] = [];
    const events: number[] = [];
    const quiet = createDownloadProgress({ log: (m) => logged.push(m), onProgress: (e) => events.push(e.received), stream: { isTTY: true, write: () => 0 }, now: () => t });
    quiet.start('w.bin', 400, 1000);
    quiet.end('w.bin', 1000);
    expect(logged[0]).toBe('Downloading w.bin (0.0 MB, resuming at 0.0 MB)');
    expect(logged[1]).toMatch(/^Downloaded w\.bin \(0\.0 MB in /);
    expect(events).toEqual([400, 1000]);
  });
});
