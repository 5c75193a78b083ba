// Opening drive files in the page: text files (train.py, config.yaml, notes.md) in a
// CodeMirror editor at /edit/PATH that saves through the Contents API as text, and
// images in a preview dialog. Other files are downloaded.
import { ApiError, contents, downloadFile, encodePath } from './api';
import { clear, dialog, formatSize, h, toast, treeUrl } from './ui';
import { navigate, setLeaveHook, topBar } from './main';
import type { EditorView } from '@codemirror/view';

const TEXT = /\.(py|txt|csv|tsv|json|md|markdown|yaml|yml|toml|cfg|ini|sh|r|log|tex|rst|xml|html|css|js|ts)$/i;
const IMAGE = /\.(png|jpe?g|gif|svg|webp)$/i;

/** The largest file opened in the editor: beyond it the page would crawl. */
export const TEXT_MAX = 5 << 20;

export function isTextFile(name: string): boolean {
  return TEXT.test(name);
}

export function isImage(name: string): boolean {
  return IMAGE.test(name);
}

export function editUrl(path: string): string {
  return '/edit/' + encodePath(path);
}

function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? '' : path.slice(0, i);
}

/** Shows why a file is not opened, with a way to download it instead. */
function refusal(box: HTMLElement, path: string, why: string): void {
  clear(box);
  box.append(h('div', { class: 'file-refused', 'data-testid': 'file-refused' },
    h('p', { text: why }),
    h('button', { class: 'primary', text: 'Download', onclick: () => downloadFile(path).catch((e) => toast(e.message, 'error')) })));
}

/** The /edit/PATH page: the file in an editor; Ctrl+S (or Save) writes it back. */
export async function renderEditor(root: HTMLElement, path: string): Promise<void> {
  clear(root);
  const name = path.split('/').pop() || path;
  document.title = name + ' - labbook';
  const status = h('span', { class: 'edit-status', 'data-testid': 'edit-status' });
  const dirtyMark = h('span', { class: 'dirty', title: 'Unsaved changes', 'data-testid': 'dirty', hidden: true, text: '●' });
  const saveBtn = h('button', { text: 'Save', title: 'Save (Ctrl+S)', disabled: true });
  const folder = parentOf(path);
  const crumbs = h('nav', { class: 'crumbs', 'aria-label': 'Folder' },
    h('a', { href: treeUrl(folder), text: folder || 'My Drive', onclick: (e: Event) => { e.preventDefault(); navigate(treeUrl(folder)); } }),
    ' / ', h('span', { class: 'file-name', text: name }), dirtyMark);
  const box = h('div', { class: 'file-editor' });
  root.append(topBar(crumbs, status, saveBtn), h('main', { class: 'edit-page' }, box));

  let info;
  try {
    info = await contents.get(path, { content: false });
  } catch (e) {
    refusal(box, path, `Cannot open ${name}: ${(e as Error).message}`);
    return;
  }
  if (info.type !== 'file') {
    navigate(info.type === 'directory' ? treeUrl(path) : '/notebooks/' + encodePath(path), true);
    return;
  }
  if ((info.size ?? 0) > TEXT_MAX) {
    refusal(box, path, `${name} is ${formatSize(info.size)}: files over ${formatSize(TEXT_MAX)} are not opened in the editor. Download it instead.`);
    return;
  }
  let text: string;
  try {
    const m = await contents.get(path, { format: 'text' });
    text = m.content as string;
  } catch (e) {
    if (e instanceof ApiError && e.status === 400) refusal(box, path, `${name} is not a text file (it is not UTF-8), so it is not opened in the editor.`);
    else refusal(box, path, `Cannot open ${name}: ${(e as Error).message}`);
    return;
  }
  if (text.includes('\u0000')) {
    refusal(box, path, `${name} looks binary (it holds NUL bytes), so it is not opened in the editor.`);
    return;
  }

  const { createEditor } = await import('./notebook/editor');
  if (!box.isConnected) return; // the user went elsewhere meanwhile
  let saved = text;
  let current = text;
  let saving: Promise<void> | null = null;
  const dirty = () => current !== saved;
  const showDirty = () => {
    dirtyMark.hidden = !dirty();
    saveBtn.disabled = !dirty();
    document.title = (dirty() ? '● ' : '') + name + ' - labbook';
  };
  const save = async () => {
    if (saving) await saving;
    if (!dirty()) return;
    const body = current;
    status.textContent = 'Saving…';
    saving = (async () => {
      try {
        await contents.save(path, { type: 'file', format: 'text', content: body });
        saved = body;
        status.textContent = 'Saved';
      } catch (e) {
        status.textContent = 'Not saved';
        toast(`Saving ${name} failed: ${(e as Error).message}`, 'error');
      }
      showDirty();
    })();
    await saving;
    saving = null;
  };
  saveBtn.onclick = () => { save(); };
  const lang = /\.py$/i.test(name) ? 'python' : /\.(md|markdown)$/i.test(name) ? 'markdown' : 'text';
  // Line ends are kept as the file has them (CodeMirror splits on any and joins
  // with this), so saving changes only what was edited.
  const crlf = /\r\n/.test(text);
  const view: EditorView = createEditor(box, text, lang, {
    onChange: (t) => { current = t; status.textContent = ''; showDirty(); },
    onFocus: () => {},
    keys: [{ key: 'Mod-s', preventDefault: true, run: () => { save(); return true; } }],
    lineSeparator: crlf ? '\r\n' : undefined,
    placeholder: '',
    fileEditor: true,
  });
  current = view.state.sliceDoc();
  showDirty();
  view.focus();

  // Ctrl+S outside the editor saves too, rather than the browser's "Save page".
  const onKey = (e: KeyboardEvent) => {
    if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === 's') { e.preventDefault(); save(); }
  };
  document.addEventListener('keydown', onKey);
  setLeaveHook(() => !dirty() || confirm(`${name} has unsaved changes. Leave without saving?`));
  (window as any).__labbookCleanup = () => {
    document.removeEventListener('keydown', onKey);
    view.destroy();
  };
}

/** Shows an image of the drive in a dialog, with its size in pixels and bytes. */
export async function previewImage(path: string, bytes: number | null): Promise<void> {
  const name = path.split('/').pop() || path;
  const caption = h('p', { class: 'preview-caption', 'data-testid': 'preview-caption', text: formatSize(bytes) });
  const img = h('img', { alt: name, class: 'preview-img', 'data-testid': 'preview-img' });
  let blobUrl = '';
  img.onload = () => { caption.textContent = `${img.naturalWidth} × ${img.naturalHeight} px, ${formatSize(bytes)}`; };
  img.onerror = () => { caption.textContent = `${name} cannot be shown as an image`; };
  if (/\.svg$/i.test(name)) {
    // /files/ sends SVG as plain bytes (the drive is not a web site), which an <img>
    // will not draw: its text goes into a blob of the right type instead. An SVG in
    // an <img> runs no scripts.
    try {
      const m = await contents.get(path, { format: 'text' });
      blobUrl = URL.createObjectURL(new Blob([m.content as string], { type: 'image/svg+xml' }));
      img.src = blobUrl;
    } catch (e) {
      caption.textContent = `Cannot show ${name}: ${(e as Error).message}`;
    }
  } else {
    img.src = '/files/' + encodePath(path);
  }
  const body = h('div', { class: 'preview' }, img, caption);
  const r = await dialog(name, body, [{ label: 'Download', value: 'download' }, { label: 'Close', value: 'close', primary: true }], { wide: true });
  if (blobUrl) URL.revokeObjectURL(blobUrl);
  if (r === 'download') downloadFile(path).catch((e) => toast(e.message, 'error'));
}
