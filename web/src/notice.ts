// Progress and outcome of what a view is doing: a spinner-free <progress> while the model works,
// the outcome in an aria-live line, and errors (the server's own message) in a role=alert box.
import { h } from './dom.ts';
import { describeError } from './api.ts';

export class Notice {
  readonly el: HTMLDivElement;
  private readonly progress: HTMLProgressElement;
  private readonly text: HTMLParagraphElement;
  private readonly error: HTMLDivElement;

  constructor(testId: string) {
    this.progress = h('progress', { class: 'progress', hidden: true, 'aria-label': 'Working' });
    this.text = h('p', { class: 'status', role: 'status', 'aria-live': 'polite', 'data-testid': `${testId}-status` });
    this.error = h('div', { class: 'error', role: 'alert', hidden: true, 'data-testid': `${testId}-error` });
    this.el = h('div', { class: 'notice' }, this.progress, this.text, this.error);
  }

  busy(message: string): void {
    this.progress.hidden = false;
    this.progress.removeAttribute('value');
    this.text.textContent = message;
    this.error.hidden = true;
  }

  /** Determinate progress: step of total done. */
  step(done: number, total: number, message: string): void {
    this.busy(message);
    this.progress.max = total;
    this.progress.value = done;
  }

  done(message = ''): void {
    this.progress.hidden = true;
    this.text.textContent = message;
  }

  fail(err: unknown, what?: string): void {
    this.progress.hidden = true;
    this.text.textContent = '';
    this.error.textContent = (what ? `${what}: ` : '') + describeError(err);
    this.error.hidden = false;
  }

  clearError(): void {
    this.error.hidden = true;
  }
}

/** Runs `task` with the button disabled and the notice busy; errors land in the notice. */
export async function withBusy<T>(
  button: HTMLButtonElement | null,
  notice: Notice,
  message: string,
  task: () => Promise<T>,
  doneMessage: (result: T) => string = () => '',
): Promise<T | undefined> {
  if (button) button.disabled = true;
  notice.busy(message);
  try {
    const result = await task();
    notice.done(doneMessage(result));
    return result;
  } catch (err) {
    notice.fail(err);
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}
