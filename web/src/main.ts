// The page: asks /v1/models what the server offers, shows a tab per capability (Inspect and
// Server always; Category, Review and Batch when listed), and keeps the API key for this tab.
import './styles.css';
import { Api, capabilitiesOf, describeError, type ApiError } from './api.ts';
import { AppContext } from './context.ts';
import { Tabs, type TabSpec } from './tabs.ts';
import { InspectView } from './views/inspect.ts';
import { ServerView } from './views/server.ts';
import { CategoryView } from './views/category.ts';
import { ReviewView } from './views/review.ts';
import { BatchView } from './views/batch.ts';

const byId = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

const api = new Api();
const ctx = new AppContext(api, byId('model-warning'));
const appError = byId<HTMLDivElement>('app-error');
const keyPanel = byId<HTMLDetailsElement>('key-panel');
const keyInput = byId<HTMLInputElement>('api-key');
const keyState = byId<HTMLSpanElement>('key-state');
const announce = byId<HTMLParagraphElement>('app-status');

function showError(message: string | null): void {
  appError.textContent = message ?? '';
  appError.hidden = !message;
}

function showKeyState(): void {
  keyState.textContent = api.key ? 'set' : 'none';
}

api.onUnauthorized = (err: ApiError) => {
  showError(`${err.describe()} Enter the API key under “API key” at the top.`);
  keyPanel.open = true;
  keyInput.focus();
};

byId<HTMLFormElement>('key-form').addEventListener('submit', (e) => {
  e.preventDefault();
  api.key = keyInput.value.trim() || null;
  keyInput.value = '';
  showKeyState();
  keyPanel.open = false;
  announce.textContent = api.key ? 'API key set for this tab.' : 'API key cleared.';
  void load();
});
byId<HTMLButtonElement>('key-forget').addEventListener('click', () => {
  api.key = null;
  keyInput.value = '';
  showKeyState();
  announce.textContent = 'API key forgotten.';
  void load();
});

const inspect = new InspectView(ctx);
const server = new ServerView(ctx);
let category: CategoryView | undefined;
let review: ReviewView | undefined;
let batch: BatchView | undefined;
const shownOnce = new Set<string>();

const tabs = new Tabs(byId('tabs'), byId('main'));
tabs.onChange = (id) => {
  // The server's state changes under the page: asked again each time its tab is shown.
  if (id === 'server') void server.refresh();
  if (id === 'category') void category?.refresh();
  if (shownOnce.has(id)) return;
  shownOnce.add(id);
  if (id === 'review') void review?.refresh();
};

function renderTabs(): void {
  const specs: TabSpec[] = [{ id: 'inspect', label: 'Inspect', panel: inspect.panel }];
  if (ctx.has('categories')) specs.push({ id: 'category', label: 'Categories', panel: (category ??= new CategoryView(ctx)).panel });
  if (ctx.has('feedback')) specs.push({ id: 'review', label: 'Review', panel: (review ??= new ReviewView(ctx)).panel });
  if (ctx.has('batch')) {
    batch ??= new BatchView(ctx, (name, image, response) => {
      inspect.showExternal(name, image, response);
      tabs.select('inspect');
    });
    specs.push({ id: 'batch', label: 'Batch', panel: batch.panel });
  }
  specs.push({ id: 'server', label: 'Server', panel: server.panel });
  tabs.set(specs);
}

async function load(): Promise<void> {
  let failure: unknown;
  try {
    const models = await api.models();
    ctx.model = models.models[0] ?? null;
    ctx.capabilities = capabilitiesOf(models);
    if (ctx.model?.generatedRandomModel) {
      ctx.showModelWarning('this server runs a generated model with random weights: its scores and maps show that the service works, not whether a part is defective.');
    }
    showError(null);
  } catch (err) {
    failure = err;
    if ((err as ApiError).status !== 401) showError(`Could not ask the server what it offers: ${describeError(err)}`);
  }
  renderTabs();
  inspect.refresh();
  batch?.refresh();
  await Promise.all([server.refresh(failure), failure ? undefined : ctx.refreshCategories().catch((err) => showError(`Could not load the categories: ${describeError(err)}`))]);
  document.body.dataset.ready = 'true';
}

showKeyState();
void load();
