// Browser test support: the system Chromium through playwright-core, a page watcher that turns
// console errors, page errors, failed requests and unexpected ≥ 400 answers into failures,
// the page built with Vite into a temporary folder, and screenshots under .test-results/.
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
export const REPO = resolve(import.meta.dirname, '../..');
export const SCREENSHOTS = join(REPO, '.test-results', 'screenshots');

export function launch(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
  });
}

/** Builds web/ the way npm run build:web does, into a fresh folder: the test sees today's sources. */
export async function buildPage(): Promise<string> {
  const { build } = await import('vite');
  const outDir = mkdtempSync(join(tmpdir(), 'web-dist-'));
  await build({ configFile: join(REPO, 'web', 'vite.config.ts'), logLevel: 'warn', build: { outDir, emptyOutDir: true } });
  if (!existsSync(join(outDir, 'index.html'))) throw new Error(`the Vite build wrote no index.html into ${outDir}`);
  return outDir;
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const file = join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

interface Expected {
  status: number;
  path: string;
  seen: number;
}

/**
 * Everything that goes wrong on the page. Answers ≥ 400 count as problems unless the test said
 * it expects that status on that path (and Chromium's console line about it is then expected too).
 */
export class PageWatch {
  readonly problems: string[] = [];
  private readonly expected: Expected[] = [];
  readonly requests: string[] = [];

  constructor(page: Page) {
    page.on('pageerror', (err) => this.problems.push(`page error: ${err.message}`));
    page.on('console', (msg) => {
      if (msg.type() !== 'error') return;
      const url = msg.location().url;
      const status = /status of (\d{3})/.exec(msg.text())?.[1];
      if (status && this.expected.some((e) => e.status === Number(status) && url && new URL(url).pathname === e.path)) return;
      this.problems.push(`console error: ${msg.text()} (${url})`);
    });
    page.on('requestfailed', (req) => this.problems.push(`request failed: ${req.method()} ${req.url()}: ${req.failure()?.errorText}`));
    page.on('request', (req) => this.requests.push(`${req.method()} ${new URL(req.url()).pathname}`));
    page.on('response', (res) => {
      if (res.status() < 400) return;
      const path = new URL(res.url()).pathname;
      const e = this.expected.find((x) => x.status === res.status() && x.path === path);
      if (e) e.seen++;
      else this.problems.push(`unexpected ${res.status()} for ${res.request().method()} ${path}`);
    });
  }

  expect(status: number, path: string): void {
    this.expected.push({ status, path, seen: 0 });
  }

  seen(status: number, path: string): number {
    return this.expected.find((e) => e.status === status && e.path === path)?.seen ?? 0;
  }

  count(request: string): number {
    return this.requests.filter((r) => r === request).length;
  }
}
