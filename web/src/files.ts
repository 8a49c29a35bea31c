// Picking images: a real file input (keyboard and screen-reader friendly) inside a drop zone
// that also takes files dragged onto it.
import { h, uid } from './dom.ts';

export interface FilePicker {
  el: HTMLDivElement;
  input: HTMLInputElement;
  files(): File[];
  clear(): void;
  focus(): void;
}

export function filePicker(label: string, opts: { multiple?: boolean; onChange?: (files: File[]) => void; testId?: string } = {}): FilePicker {
  let picked: File[] = [];
  const id = uid('files');
  const input = h('input', { type: 'file', id, accept: 'image/*', multiple: opts.multiple ?? true, 'data-testid': opts.testId });
  const summary = h('p', { class: 'hint', 'aria-live': 'polite' }, 'No image chosen.');
  const zone = h(
    'div',
    { class: 'dropzone' },
    h('label', { for: id, class: 'dropzone-label' }, label),
    h('p', { class: 'hint' }, opts.multiple === false ? 'Drop an image here or choose one.' : 'Drop images here or choose them.'),
    input,
    summary,
  );
  const set = (files: File[]) => {
    const isImage = (f: File) => f.type.startsWith('image/') || /\.(png|jpe?g|webp|tiff?|gif|avif|bmp)$/i.test(f.name);
    picked = files.filter(isImage);
    const left = files.filter((f) => !isImage(f));
    if (opts.multiple === false) picked = picked.slice(0, 1);
    const chosen = picked.length ? `${picked.length} image${picked.length > 1 ? 's' : ''}: ${picked.map((f) => f.name).join(', ')}` : 'No image chosen.';
    summary.textContent = left.length ? `${chosen} Left out, not images: ${left.map((f) => f.name).join(', ')}.` : chosen;
    opts.onChange?.(picked);
  };
  input.addEventListener('change', () => set(Array.from(input.files ?? [])));
  zone.addEventListener('dragover', (e) => {
    e.preventDefault();
    zone.classList.add('dragging');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('dragging'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    zone.classList.remove('dragging');
    // The dropped files replace the chosen ones: the input stops naming its old choice.
    input.value = '';
    set(Array.from(e.dataTransfer?.files ?? []));
  });
  return {
    el: zone,
    input,
    files: () => picked,
    clear: () => {
      input.value = '';
      set([]);
    },
    focus: () => input.focus(),
  };
}
