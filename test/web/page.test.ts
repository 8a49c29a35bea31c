// The web page in a real browser (system Chromium through playwright-core) against a real
// server on the tiny generated model: upload, overlay, threshold slider, keyboard, phone width,
// API key, server errors, and the category / review / batch flows when the server offers them.
// Fails on any console error, page error, failed request or unexpected ≥ 400 answer.
// Skips, saying why, when /usr/bin/chromium is absent.
import { afterAll, afterEach, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { buildApp } from '../../src/app.ts';
import { CategoryProvider } from '../../src/categories/provider.ts';
import { ApiKeys } from '../../src/auth/api-keys.ts';
import { startTinyService, type TinyService } from '../support/tiny-service.ts';
import { CHROMIUM, PageWatch, REPO, buildPage, launch, screenshot } from './browser.ts';
import { defectImage, normalImage, type TestImage } from './images.ts';

const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.warn(`test/web/page.test.ts: SKIPPED: ${CHROMIUM} is absent (apt-get install chromium); the web page is not tested in a browser`);

const KEY = 'page-test-key-0123456789abcdef';

let svc: TinyService;
let dist: string;
let open: FastifyInstance;
let locked: FastifyInstance;
let base: string;
let lockedBase: string;
let browser: Browser;
let capabilities = new Set<string>();
let context: BrowserContext | undefined;
let watch: PageWatch;

async function listen(app: FastifyInstance): Promise<string> {
  await app.listen({ host: '127.0.0.1', port: 0 });
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
}

async function newPage(viewport = { width: 1280, height: 800 }): Promise<Page> {
  context = await browser.newContext({ viewport, deviceScaleFactor: 1 });
  const page = await context.newPage();
  watch = new PageWatch(page);
  return page;
}

async function openPage(page: Page, url = base): Promise<void> {
  await page.goto(`${url}/`);
  await page.waitForSelector('body[data-ready="true"]');
}

/** Picks images, names the category and runs a detection; waits for the overlay. */
async function detect(page: Page, images: TestImage[], category: string, opts: { branches?: boolean; threshold?: string; drop?: boolean } = {}): Promise<void> {
  if (opts.drop) await dropFiles(page, '[data-view="inspect"] .dropzone', images);
  else await page.locator('[data-testid="inspect-files"]').setInputFiles(images);
  await page.getByTestId('category').fill(category);
  if (opts.branches) await page.getByTestId('branches').check();
  if (opts.threshold !== undefined) await page.getByLabel('Threshold (optional)').first().fill(opts.threshold);
  const before = watch.count('POST /v1/detect');
  await page.getByTestId('detect').click();
  await expect.poll(() => watch.count('POST /v1/detect'), { timeout: 30_000 }).toBe(before + images.length);
  await page.waitForSelector('[data-testid="inspect-status"]:has-text("Scored")', { timeout: 60_000 });
  await page.waitForSelector('[data-testid="overlay"][data-ready="true"]');
}

/** Drops files onto an element the way a drag from the desktop does. */
async function dropFiles(page: Page, selector: string, images: TestImage[]): Promise<void> {
  const files = images.map((i) => ({ name: i.name, type: i.mimeType, b64: i.buffer.toString('base64') }));
  const dataTransfer = await page.evaluateHandle((list) => {
    const dt = new DataTransfer();
    for (const f of list) dt.items.add(new File([Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0))], f.name, { type: f.type }));
    return dt;
  }, files);
  await page.dispatchEvent(selector, 'dragover', { dataTransfer });
  await page.dispatchEvent(selector, 'drop', { dataTransfer });
}

/** docs/inspect.png: the result at 1280 × 800, as a palette PNG to stay small. */
async function docsScreenshot(page: Page): Promise<void> {
  await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
  await page.locator('.result').evaluate((el) => el.scrollIntoView({ block: 'start' }));
  const png = await page.screenshot({ fullPage: false });
  mkdirSync(join(REPO, 'docs'), { recursive: true });
  await sharp(png).png({ palette: true, colours: 256, effort: 10 }).toFile(join(REPO, 'docs', 'inspect.png'));
}

/** expect.poll with room for a busy machine (its default gives up after 1 s). */
const poll = <T>(fn: () => Promise<T> | T) => expect.poll(fn, { timeout: 15_000 });

const regionCount = async (page: Page) => Number(await page.getByTestId('region-count').getAttribute('data-count'));

/** Skips a capability flow with a printed reason while the server does not offer it. */
function needs(ctx: TestContext, ...caps: string[]): void {
  const missing = caps.filter((c) => !capabilities.has(c));
  if (!missing.length) return;
  console.warn(`test/web/page.test.ts: "${ctx.task.name}" SKIPPED: the server's /v1/models lists no ${missing.join(', ')} capability yet`);
  ctx.skip();
}

describe.skipIf(!haveChromium)('web page in Chromium', () => {
  beforeAll(async () => {
    // Detection images kept: the review flow adds a false alarm to the references.
    svc = await startTinyService({ keepDetectionImages: '1' });
    dist = await buildPage();
    const opts = {
      detector: svc.detector,
      defaultThreshold: svc.settings.threshold,
      maxBodyBytes: svc.settings.maxBodyBytes,
      logLevel: 'silent',
      webRoot: dist,
      categories: CategoryProvider.of(svc.categories),
    };
    open = await buildApp(opts);
    locked = await buildApp({ ...opts, apiKeys: new ApiKeys([KEY]) });
    [base, lockedBase] = await Promise.all([listen(open), listen(locked)]);
    const models = (await (await fetch(`${base}/v1/models`)).json()) as { capabilities?: string[]; models: Array<{ capabilities?: string[] }> };
    capabilities = new Set(models.capabilities ?? models.models[0]?.capabilities ?? ['detect']);
    browser = await launch();
  });

  afterEach(async () => {
    const problems = watch?.problems.splice(0) ?? [];
    await context?.close();
    context = undefined;
    expect(problems, 'the page had errors').toEqual([]);
  });

  afterAll(async () => {
    await browser?.close();
    await Promise.all([open?.close(), locked?.close()]);
    await svc?.close();
    if (dist) rmSync(dist, { recursive: true, force: true });
  });

  it('has a watcher that catches console errors, page errors and unexpected answers', async () => {
    const page = await newPage();
    await openPage(page);
    await page.evaluate(async () => {
      console.error('boom');
      setTimeout(() => {
        throw new Error('thrown in the page');
      });
      await fetch('/v1/no-such-route');
    });
    await poll(() => watch.problems.length).toBeGreaterThanOrEqual(3);
    const seen = watch.problems.splice(0).join('\n');
    expect(seen).toContain('console error: boom');
    expect(seen).toContain('page error: thrown in the page');
    expect(seen).toContain('unexpected 404 for GET /v1/no-such-route');
  });

  it('inspects an image: overlay from the grid, the random-model warning, branch maps, and a slider that recomputes regions without a request', async () => {
    const page = await newPage();
    await openPage(page);
    await poll(() => page.locator('#model-warning').isVisible()).toBe(true);
    expect(await page.locator('#model-warning').textContent()).toMatch(/random weights/);
    await screenshot(page, '01-start');

    await detect(page, [await defectImage(0)], 'metal plate', { branches: true });
    expect(await page.getByTestId('verdict').textContent()).toMatch(/^(normal|anomalous)$/);
    expect(await page.getByTestId('summary').textContent()).toContain('metal plate');
    expect(await page.getByTestId('fact-score').textContent()).toMatch(/^0\.\d{3}$/);
    for (const b of ['full', 'high', 'low']) await page.waitForSelector(`[data-testid="branch-${b}"][data-ready="true"]`);
    // The model's own warning, from the detection answer.
    expect(await page.locator('#model-warning').textContent()).toContain('generated model with random weights');
    const initial = await regionCount(page);
    expect(await page.getByTestId('region-count').textContent()).toMatch(new RegExp(`^${initial} regions? above 0\\.50`));
    await screenshot(page, '02-inspect-detected');

    const detections = watch.count('POST /v1/detect');
    const slider = page.getByTestId('threshold-slider');
    await slider.focus();
    await page.keyboard.press('Home'); // threshold 0: everything is above it
    await poll(() => page.getByTestId('region-count').textContent()).toMatch(/above 0\.00/);
    const atZero = await regionCount(page);
    await page.keyboard.press('End'); // threshold 1: nothing is above it
    await poll(() => page.getByTestId('region-count').textContent()).toMatch(/above 1\.00/);
    expect(atZero).toBeGreaterThanOrEqual(1);
    expect(await regionCount(page)).toBe(0);
    await slider.fill('0.5');
    await poll(() => regionCount(page)).toBe(initial);
    await screenshot(page, '03-inspect-slider');
    if (process.env.UPDATE_DOCS_SCREENSHOT === '1') await docsScreenshot(page);
    expect(watch.count('POST /v1/detect'), 'the slider sent no request').toBe(detections);
    // The legend follows the slider.
    expect(await page.locator('.legend-marker').textContent()).toBe('0.50');
  });

  it('moves between tabs with the keyboard, with a visible focus outline', async () => {
    const page = await newPage();
    await openPage(page);
    const tabs = page.getByRole('tab');
    const names = await tabs.allTextContents();
    expect(names[0]).toBe('Inspect');
    expect(names.at(-1)).toBe('Server');
    if (!capabilities.has('categories')) expect(names).not.toContain('Categories');
    await page.locator('[role="tab"][aria-selected="true"]').focus();
    await page.keyboard.press('ArrowRight');
    const second = page.getByRole('tab', { name: names[1] });
    await poll(() => second.getAttribute('aria-selected')).toBe('true');
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe(names[1]);
    expect(await page.evaluate(() => getComputedStyle(document.activeElement!).outlineStyle)).not.toBe('none');
    expect(await page.locator(`#panel-${await second.getAttribute('data-tab')}`).isVisible()).toBe(true);
    expect(await page.locator('#panel-inspect').isVisible()).toBe(false);
    expect(page.url()).toMatch(/#\w+$/);
    await screenshot(page, '04-keyboard-second-tab');
    await page.keyboard.press('Home');
    await poll(() => page.getByRole('tab', { name: 'Inspect' }).getAttribute('aria-selected')).toBe('true');
    await page.keyboard.press('End');
    await poll(() => page.getByRole('tab', { name: 'Server' }).getAttribute('aria-selected')).toBe('true');
    expect(await page.locator('#panel-server').textContent()).toContain(svc.detector.info().id);
    await page.keyboard.press('ArrowRight'); // wraps around
    await poll(() => page.getByRole('tab', { name: 'Inspect' }).getAttribute('aria-selected')).toBe('true');
    // Only the selected tab is in the tab order; Tab goes on into the panel.
    expect(await tabs.evaluateAll((els) => els.map((e) => (e as HTMLElement).tabIndex))).toEqual(names.map((_, i) => (i === 0 ? 0 : -1)));
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.closest('[role="tabpanel"]')?.id ?? document.activeElement?.id)).toBe('panel-inspect');
  });

  it('fits a 390 px phone screen, and takes images dropped on it', async () => {
    const page = await newPage({ width: 390, height: 844 });
    await openPage(page);
    await detect(page, [await defectImage(1), await normalImage(0)], 'metal plate', { drop: true });
    expect(await page.locator('.result-chip').count()).toBe(2);
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    const box = await page.getByTestId('overlay').boundingBox();
    expect(box!.width).toBeGreaterThan(300);
    expect(box!.width).toBeLessThanOrEqual(390);
    await screenshot(page, '05-phone');
  });

  it('shows the server’s error message (JSON {error, message})', async () => {
    const page = await newPage();
    await openPage(page);
    watch.expect(400, '/v1/detect');
    await page.locator('[data-testid="inspect-files"]').setInputFiles([await defectImage(0)]);
    await page.getByTestId('category').fill('bad <category>');
    await page.getByTestId('detect').click();
    await expect.poll(() => page.getByTestId('inspect-error').textContent(), { timeout: 30_000 }).toMatch(/400 bad_request: category: category may hold letters/);
    expect(await page.getByTestId('inspect-error').getAttribute('role')).toBe('alert');
    expect(watch.seen(400, '/v1/detect')).toBe(1);
    await screenshot(page, '06-server-error');
  });

  it('asks for the API key on 401, keeps it in sessionStorage only, and sends it as a Bearer token', async () => {
    const page = await newPage();
    watch.expect(401, '/v1/models');
    await openPage(page, lockedBase);
    await poll(() => page.locator('#app-error').textContent()).toMatch(/401 unauthorized: A valid API key is required/);
    expect(await page.locator('#key-panel').getAttribute('open')).not.toBeNull();
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('api-key');
    await screenshot(page, '07-api-key-asked');
    await page.locator('#api-key').fill(KEY);
    await page.keyboard.press('Enter');
    await poll(() => page.locator('#key-state').textContent()).toBe('set');
    await poll(() => page.locator('#app-error').isHidden()).toBe(true);
    const auth = page.waitForRequest((r) => r.url().endsWith('/v1/detect'));
    await detect(page, [await defectImage(2)], 'metal plate');
    expect((await auth).headers().authorization).toBe(`Bearer ${KEY}`);
    expect(await page.evaluate(() => [Object.keys(sessionStorage).length, Object.keys(localStorage).length])).toEqual([1, 0]);
    expect(watch.seen(401, '/v1/models')).toBe(1);
  });

  it('creates a category, adds references, calibrates and draws the histogram', async (ctx) => {
    needs(ctx, 'categories');
    const page = await newPage();
    await openPage(page);
    await page.getByRole('tab', { name: 'Categories' }).click();
    await page.getByTestId('category-id').fill('web test plate');
    await page.getByLabel('Target false-alarm rate').fill('0.5');
    await page.getByTestId('save-category').click();
    await page.waitForSelector('[data-testid="category-detail"]:visible');
    expect(await page.getByTestId('category-list').textContent()).toContain('web test plate');
    const refs = await Promise.all([0, 1, 2, 3, 4, 5, 6, 7].map((i) => normalImage(i)));
    await page.locator('[data-testid="reference-files"]').setInputFiles(refs);
    await page.getByTestId('add-references').click();
    await expect.poll(() => page.getByTestId('reference').count(), { timeout: 60_000 }).toBe(refs.length);
    expect(await page.getByTestId('references-status').textContent()).toMatch(/^Added 8;/);
    // Remove one, by its button.
    await page.getByTestId('reference').first().getByRole('button', { name: /^Remove reference/ }).click();
    await expect.poll(() => page.getByTestId('reference').count(), { timeout: 30_000 }).toBe(refs.length - 1);
    await page.getByTestId('calibrate').click();
    await expect.poll(() => page.getByTestId('guarantee').textContent(), { timeout: 60_000 }).toMatch(/\S/);
    expect(await page.getByTestId('calibration-status').textContent()).toMatch(/^Calibrated on 7 normal scores: threshold 0\.\d{3}\.$/);
    await screenshot(page, '08-category-calibrated');
    // A detection with the stored category uses its calibration.
    await page.getByRole('tab', { name: 'Inspect' }).click();
    await detect(page, [await defectImage(3)], 'web test plate');
    expect(await page.getByTestId('fact-threshold').textContent()).toContain('category calibration');
  });

  it('reviews detections: filters by verdict, marks one, and adds a false alarm to the references', async (ctx) => {
    needs(ctx, 'feedback', 'categories');
    const page = await newPage();
    await openPage(page);
    const id = 'web test plate';
    const refsBefore = ((await (await fetch(`${base}/v1/categories/${encodeURIComponent(id)}`)).json()) as { references: { count: number } }).references.count;
    // Threshold 0: the detection is certainly anomalous, a false alarm to correct.
    await detect(page, [await normalImage(9)], id, { threshold: '0' });
    await page.getByRole('tab', { name: 'Review' }).click();
    await page.getByTestId('review-category').fill(id);
    await page.getByLabel('Verdict').selectOption('anomalous');
    await page.getByTestId('load-detections').click();
    await expect.poll(() => page.getByTestId('detection').count(), { timeout: 30_000 }).toBeGreaterThan(0);
    expect(await page.locator('[data-testid="detection"] .verdict').allTextContents()).toEqual(expect.arrayContaining(['anomalous']));
    expect(await page.locator('[data-testid="detection"] .verdict-normal').count()).toBe(0);
    const card = page.getByTestId('detection').first();
    await card.getByTestId('mark-anomalous').click();
    await expect.poll(() => card.getByTestId('feedback-state').textContent(), { timeout: 30_000 }).toMatch(/^Reviewed: anomalous/);
    await card.getByTestId('add-to-references').click();
    await expect.poll(() => card.getByTestId('feedback-state').textContent(), { timeout: 30_000 }).toMatch(/^Reviewed: normal/);
    // The rebuilt card keeps what was done, and offers no second add (it would add nothing).
    expect(await card.locator('[role="status"]').last().textContent()).toBe('Marked normal and added to the references. The calibration is now out of date: run it again.');
    expect(await card.getByTestId('add-to-references').count()).toBe(0);
    await screenshot(page, '09-review');
    const after = (await (await fetch(`${base}/v1/categories/${encodeURIComponent(id)}`)).json()) as { references: { count: number }; calibration: { current: boolean } | null };
    expect(after.references.count).toBe(refsBefore + 1);
    // The calibration was made with one reference fewer: the Categories view says it is out of date.
    expect(after.calibration?.current).toBe(false);
    await page.getByRole('tab', { name: 'Categories' }).click();
    await expect.poll(() => page.getByTestId('category-list').textContent(), { timeout: 30_000 }).toContain('(out of date)');
    await page.getByTestId(`open-category-${id}`).click();
    await expect.poll(() => page.getByTestId('calibration-outdated').textContent(), { timeout: 30_000 }).toMatch(/^Out of date: made with 7 references, the category now has 8/);
  });

  it('runs a batch and sorts the results by score, name and verdict', async (ctx) => {
    needs(ctx, 'batch');
    const page = await newPage();
    await openPage(page);
    await page.getByRole('tab', { name: 'Batch' }).click();
    const images = [await defectImage(4), await normalImage(1), await defectImage(5)];
    await page.locator('[data-testid="batch-files"]').setInputFiles(images);
    await page.getByTestId('batch-category').fill('metal plate');
    await page.getByTestId('run-batch').click();
    await expect.poll(() => page.getByTestId('batch-row').count(), { timeout: 60_000 }).toBe(3);
    const scores = async () => (await page.getByTestId('batch-score').allTextContents()).map(Number);
    await page.locator('button[data-sort="score"]').click();
    const desc = await scores();
    expect(desc).toEqual([...desc].sort((a, b) => b - a));
    await page.locator('button[data-sort="score"]').click();
    const asc = await scores();
    expect(asc).toEqual([...asc].sort((a, b) => a - b));
    await page.locator('button[data-sort="name"]').click();
    const names = await page.locator('[data-testid="batch-row"] th').allTextContents();
    expect(names).toEqual([...names].sort((a, b) => a.toLowerCase().localeCompare(b.toLowerCase())));
    await page.locator('button[data-sort="verdict"]').click();
    expect(await page.locator('th:has(button[data-sort="verdict"])').getAttribute('aria-sort')).toBe('descending');
    await screenshot(page, '10-batch');
    await page.getByTestId('batch-row').first().getByRole('button', { name: 'Inspect' }).click();
    await page.waitForSelector('[data-testid="overlay"][data-ready="true"]');
    expect(await page.getByRole('tab', { name: 'Inspect' }).getAttribute('aria-selected')).toBe('true');
  });
});
