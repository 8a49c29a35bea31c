// Server: the loaded model and what the server offers, from /v1/models and /readyz.
import { facts, fill, h } from '../dom.ts';
import { Notice } from '../notice.ts';
import type { AppContext } from '../context.ts';

export class ServerView {
  readonly panel: HTMLElement;
  private readonly body = h('div', { class: 'server-info' });
  private readonly notice = new Notice('server');

  constructor(private readonly ctx: AppContext) {
    this.panel = h(
      'section',
      { class: 'panel', 'data-view': 'server' },
      h('h2', {}, 'Server and model'),
      this.notice.el,
      this.body,
      h('p', {}, 'The API is described at ', h('a', { href: '/docs' }, '/docs'), ' (OpenAPI: ', h('a', { href: '/openapi.json' }, '/openapi.json'), ').'),
    );
  }

  async refresh(error?: unknown): Promise<void> {
    if (error) this.notice.fail(error, 'GET /v1/models');
    else this.notice.clearError();
    const m = this.ctx.model;
    const ready = await this.ctx.api.ready();
    const state = { ready: 'yes', 'not ready': 'no (loading, warming up, or the store unreachable)', unreachable: 'the server did not answer: is it running?' }[ready];
    const rows: Array<[string, string]> = [['Ready', `${state} (checked ${new Date().toLocaleTimeString()})`]];
    if (m) {
      rows.push(
        ['Model', m.id],
        ['Source', m.source],
        ['Random weights', m.generatedRandomModel ? 'yes: scores say nothing about defects' : 'no'],
        ['Input size', `${m.inputSize} px, ${m.grid} × ${m.grid} patch grid`],
        ['Dense layers', `${m.denseLayers.join(', ')} (from block ${m.denseStart}, ${m.denseAttention} attention)`],
        ['Methods', (m.methods ?? ['ours']).join(', ')],
        ['Prompt modes', m.promptModes.join(', ')],
        ['Learned prompt files', m.learnedPrompts?.available.map((f) => f.name + (f.default ? ' (default)' : '')).join(', ') || 'none'],
      );
      for (const r of m.learnedPrompts?.refused ?? []) rows.push([`Refused prompt file ${r.name}`, r.reason]);
    }
    rows.push(['Capabilities', [...this.ctx.capabilities].join(', ')]);
    fill(this.body, facts(rows, 'facts wide'));
  }
}
