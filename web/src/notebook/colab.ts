// google.colab's files.upload() and files.download() in a notebook (docs/colab.md):
// the kernel publishes an output with a labbook mime type and waits on a drive
// folder; this page answers it. Only an output that arrives while its cell runs in
// this page is live: one read from the saved notebook shows as finished, and never
// opens a file picker or starts a download again.
import { contents, uploadFile } from '../api';
import { h } from '../ui';
import { downloadUrl, fileDownloadUrl } from '../upload';

export const UPLOAD_MIME = 'application/vnd.labbook.upload+json';
export const DOWNLOAD_MIME = 'application/vnd.labbook.download+json';

/** How an output reached the page: from the kernel while this page ran the cell
 * ('run'), replayed by the hub to this page after a reload ('replay'), or from the
 * saved notebook (undefined). */
export type Liveness = 'run' | 'replay' | undefined;

// One view per output object: a redraw of the cell must not start the upload or
// the download again, nor lose the widget's state.
const views = new WeakMap<object, HTMLElement>();

function join(dir: string, name: string): string {
  return dir ? `${dir}/${name}` : name;
}

function uploadWidget(spec: { id?: string; folder?: string }, live: boolean): HTMLElement {
  const box = h('div', { class: 'colab-upload', 'data-upload-id': spec.id || '' });
  const status = h('span', { class: 'colab-status' });
  if (!live || typeof spec.folder !== 'string' || !spec.folder) {
    box.classList.add('inert');
    box.append(h('button', { text: 'Choose files', disabled: true }), ' ',
      h('button', { text: 'Cancel upload', disabled: true }), ' ',
      h('span', { class: 'colab-status', text: 'Upload widget is only available when the cell has been executed in the current browser session. Please rerun this cell to enable.' }));
    return box;
  }
  const folder = spec.folder.replace(/^\/+|\/+$/g, '');
  const input = h('input', { type: 'file', multiple: true, hidden: true, 'data-testid': 'colab-upload-input' });
  const choose = h('button', { text: 'Choose files', onclick: () => input.click() });
  const list = h('div', { class: 'colab-files' });
  const marker = async (name: '.done' | '.cancel') =>
    contents.save(join(folder, name), { type: 'file', format: 'text', content: '' });
  const finish = (text: string, cls = 'done') => {
    box.classList.add(cls);
    box.classList.remove('active');
    choose.disabled = true;
    cancel.disabled = true;
    status.textContent = text;
  };
  const cancel = h('button', { text: 'Cancel upload', onclick: async () => {
    finish('Upload cancelled.');
    try { await marker('.cancel'); } catch (e) { status.textContent = `Cancel failed: ${(e as Error).message}`; }
  } });
  input.addEventListener('change', async () => {
    const files = Array.from(input.files || []);
    input.value = '';
    if (!files.length) return;
    choose.disabled = true;
    cancel.disabled = true;
    status.textContent = '';
    let failed = 0;
    for (const f of files) {
      const pct = h('span', { class: 'pct', text: '0%' });
      const row = h('div', { class: 'upload-row', 'data-name': f.name }, h('span', { text: `${f.name} (${f.type || 'n/a'}) - ${f.size} bytes` }), pct);
      list.append(row);
      if (f.name === '.done' || f.name === '.cancel' || f.name.startsWith('.~labbook-')) {
        row.classList.add('failed');
        pct.textContent = 'this name cannot be uploaded';
        continue;
      }
      try {
        await uploadFile(f, join(folder, f.name), (x) => { pct.textContent = `${Math.floor(x * 100)}%`; });
        row.classList.add('done');
        pct.textContent = '100% done';
      } catch (e) {
        failed++;
        row.classList.add('failed');
        pct.textContent = (e as Error).message;
      }
    }
    try {
      await marker('.done');
      finish(failed ? `${failed} file${failed === 1 ? '' : 's'} failed; the others were handed to the runtime.` : 'Upload complete.');
    } catch (e) {
      // The cell may have ended meanwhile (interrupted, timed out): the kernel removed the folder.
      finish(`The runtime is no longer waiting: ${(e as Error).message}`, 'failed');
    }
  });
  box.classList.add('active');
  box.append(choose, ' ', cancel, ' ', status, input, list);
  return box;
}

function downloadNote(spec: { path?: string; name?: string }, live: Liveness): HTMLElement {
  const path = typeof spec.path === 'string' ? spec.path : '';
  const name = typeof spec.name === 'string' && spec.name ? spec.name : path.split('/').pop() || 'file';
  const url = fileDownloadUrl(path);
  const link = h('a', { href: url, download: name, text: name });
  if (live === 'run' && path) {
    downloadUrl(url, name);
    return h('div', { class: 'colab-download' }, 'Downloaded ', link);
  }
  return h('div', { class: 'colab-download' }, 'Download ', link);
}

/** The view of a google.colab output (mime UPLOAD_MIME or DOWNLOAD_MIME) of output
 * object `o`, made once per object. */
export function colabView(o: object, mime: string, value: any, live: Liveness): HTMLElement {
  let v = views.get(o);
  if (!v) {
    v = mime === UPLOAD_MIME ? uploadWidget(value || {}, !!live) : downloadNote(value || {}, live);
    views.set(o, v);
  }
  return v;
}

/** Makes the upload widgets below `el` inert: their cell has finished, so the kernel
 * waits no more (it removed the folder). */
export function settleColabWidgets(el: HTMLElement): void {
  for (const w of el.querySelectorAll<HTMLElement>('.colab-upload.active')) {
    w.classList.remove('active');
    w.classList.add('inert');
    for (const b of w.querySelectorAll('button')) b.disabled = true;
    const s = w.querySelector('.colab-status');
    if (s && !s.textContent) s.textContent = 'The cell has finished; this upload is over.';
  }
}
