// Home: the user's drive. Folders, notebooks and files in natural order; new notebook
// (in "Colab Notebooks", as Colab does), new folder, upload by button or drag and
// drop with progress (resumable, through upload.ts), extract archives, rename, move
// (with a folder picker), delete, download (files, and folders as zips); selection
// with Shift/Ctrl, Delete and F2, a context menu; text files open in the editor
// page, images in a preview (fileview.ts); recent notebooks.
import { ContentsModel, contents, downloadFile, trash } from './api';
import { downloadUrl, folderZipUrl, isArchive, showExtraction, startExtract, uploadFiles } from './upload';
import { ask, clear, confirmBox, contextMenu, dialog, formatDate, formatSize, h, naturalCompare, notebookUrl, recent, toast, treeUrl } from './ui';
import { navigate, topBar } from './main';
import { editUrl, isImage, isTextFile, previewImage } from './fileview';
import { icon } from './icons';

export const NOTEBOOK_FOLDER = 'Colab Notebooks';

/** Creates an untitled notebook in "Colab Notebooks" (made if missing); returns its path. */
export async function newNotebook(dir = NOTEBOOK_FOLDER): Promise<string> {
  if (dir && !(await contents.exists(dir))) await contents.save(dir, { type: 'directory' });
  const m = await contents.newUntitled(dir, 'notebook');
  return m.path;
}

function join(dir: string, name: string): string {
  return dir ? `${dir}/${name}` : name;
}

const icons: Record<string, string> = { directory: 'folder', notebook: 'notebook', file: 'file' };

/** Whether archives are unpacked on arrival (the home page's checkbox, remembered). */
const EXTRACT_KEY = 'labbook:extract-on-arrival';
function extractOnArrival(): boolean {
  return localStorage.getItem(EXTRACT_KEY) === '1';
}

/** Folders first, then names as people read them (Untitled2 before Untitled10). */
export function driveOrder(a: ContentsModel, b: ContentsModel): number {
  return (a.type === 'directory' ? 0 : 1) - (b.type === 'directory' ? 0 : 1) || naturalCompare(a.name, b.name);
}

/** More files than this in one drop (or pick) get the hint to send one archive. */
export const MANY_FILES = 50;

/** Says, above the uploads, that many small files go faster as one archive. */
function manyFilesHint(box: HTMLElement, n: number): void {
  box.querySelector('.many-files')?.remove();
  const hint = h('div', { class: 'hint many-files', role: 'note', 'data-testid': 'many-files-hint' },
    h('span', { text: `${n} files are uploaded one after another. Many files go much faster as one archive: ` +
      'zip the folder, upload the .zip with "Extract archives on arrival" checked, and labbook unpacks it on the server.' }),
    h('button', { class: 'link', text: 'Dismiss', onclick: () => hint.remove() }));
  box.prepend(hint);
}

/** Lets the user pick a folder of the drive, starting in `start`; resolves with its
 * path ('' for My Drive), or null when cancelled. Folders in `exclude` (and what is
 * inside them) cannot be picked: a folder does not move into itself. `from` is the
 * folder the items are in now, where moving them does nothing. */
export async function pickFolder(title: string, start: string, exclude: string[], from: string): Promise<string | null> {
  let cur = start;
  const crumbs = h('nav', { class: 'crumbs picker-crumbs', 'aria-label': 'Folder' });
  const list = h('ul', { class: 'picker-list', 'data-testid': 'folder-picker' });
  const note = h('p', { class: 'picker-note' });
  let okBtn: HTMLButtonElement | null = null;
  const excluded = (p: string) => exclude.some((x) => p === x || p.startsWith(x + '/'));
  const show = async (d: string) => {
    cur = d;
    clear(crumbs);
    crumbs.append(h('a', { href: '#', text: 'My Drive', onclick: (e: Event) => { e.preventDefault(); show(''); } }));
    let acc = '';
    for (const part of d.split('/').filter(Boolean)) {
      acc = join(acc, part);
      const to = acc;
      crumbs.append(' / ', h('a', { href: '#', text: part, onclick: (e: Event) => { e.preventDefault(); show(to); } }));
    }
    if (okBtn) okBtn.disabled = d === from || excluded(d);
    note.textContent = d === from ? 'The items are in this folder now.' : excluded(d) ? 'A folder cannot move into itself.' : '';
    clear(list);
    let m: ContentsModel;
    try {
      m = await contents.get(d, { type: 'directory' });
    } catch (e) {
      list.append(h('li', { class: 'error', text: `Cannot list this folder: ${(e as Error).message}` }));
      return;
    }
    if (cur !== d) return;
    const dirs = (m.content as ContentsModel[]).filter((x) => x.type === 'directory' && !x.name.startsWith('.')).sort(driveOrder);
    if (!dirs.length) list.append(h('li', { class: 'empty', text: 'No folders here' }));
    for (const f of dirs) {
      list.append(h('li', {}, h('button', {
        class: 'picker-folder', 'data-name': f.name, disabled: excluded(f.path), title: `Open ${f.name}`,
        onclick: () => show(f.path),
      }, icon('folder'), ' ', f.name)));
    }
  };
  const body = h('div', { class: 'picker' }, crumbs, list, note);
  const r = await dialog(title, body, [{ label: 'Cancel', value: 'cancel' }, { label: 'Move here', value: 'ok', primary: true }], {
    onOpen: () => {
      okBtn = body.closest('.modal')!.querySelector('button[data-value=ok]');
      show(start);
    },
  });
  return r === 'ok' ? cur : null;
}

/** Uploads files into dir through tus, showing each one's progress and the total in
 * `box`; `changed` runs as each file lands (or its archive is unpacked). */
export async function uploadInto(dir: string, files: FileList | File[], box: HTMLElement, changed: () => void = () => {}): Promise<void> {
  await uploadFiles(dir, Array.from(files), box, extractOnArrival(), changed);
}

export async function renderHome(root: HTMLElement, dir: string): Promise<void> {
  clear(root);
  document.title = (dir ? dir.split('/').pop() + ' - ' : '') + 'My Drive - labbook';
  const list = h('tbody');
  const uploads = h('div', { class: 'uploads' });
  const fileInput = h('input', { type: 'file', multiple: true, hidden: true, 'data-testid': 'upload-input' });
  const crumbs = h('nav', { class: 'crumbs', 'aria-label': 'Folder' });

  const refresh = async () => {
    let m: ContentsModel;
    try {
      m = await contents.get(dir, { type: 'directory' });
    } catch (e) {
      clear(list);
      list.append(h('tr', {}, h('td', { colspan: 4, class: 'error', text: `Cannot list this folder: ${(e as Error).message}` })));
      return;
    }
    clear(list);
    items = (m.content as ContentsModel[]).filter((x) => !x.name.startsWith('.'));
    items.sort(driveOrder);
    // What was selected and is still here stays selected.
    const names = new Set(items.map((x) => x.name));
    for (const n of [...selected]) if (!names.has(n)) selected.delete(n);
    if (anchor !== null && !names.has(anchor)) anchor = null;
    if (!items.length) list.append(h('tr', {}, h('td', { colspan: 4, class: 'empty', text: 'This folder is empty. Drop files here to upload them.' })));
    for (const it of items) list.append(row(it));
    showSelection();
  };

  const open = (it: ContentsModel) => {
    if (it.type === 'directory') navigate(treeUrl(it.path));
    else if (it.type === 'notebook') navigate(notebookUrl(it.path));
    else if (isTextFile(it.name)) navigate(editUrl(it.path));
    else if (isImage(it.name)) previewImage(it.path, it.size);
    else downloadFile(it.path).catch((e) => toast(e.message, 'error'));
  };

  // Selection, as in Google Drive: a click selects a row, Ctrl (Cmd) + click adds
  // or removes one, Shift + click selects from the last clicked row to this one.
  let items: ContentsModel[] = [];
  const selected = new Set<string>();
  let anchor: string | null = null;
  const rowOf = (name: string) => list.querySelector<HTMLElement>(`tr.item[data-name="${CSS.escape(name)}"]`);
  const showSelection = () => {
    for (const tr of list.querySelectorAll<HTMLElement>('tr.item')) {
      const on = selected.has(tr.dataset.name!);
      tr.classList.toggle('selected', on);
      tr.setAttribute('aria-selected', on ? 'true' : 'false');
    }
  };
  const selection = () => items.filter((x) => selected.has(x.name));
  const select = (it: ContentsModel, e: { ctrlKey: boolean; metaKey: boolean; shiftKey: boolean }) => {
    const i = items.findIndex((x) => x.name === it.name);
    if (i < 0) return;
    const a = anchor === null ? -1 : items.findIndex((x) => x.name === anchor);
    if (e.shiftKey && a >= 0) {
      if (!(e.ctrlKey || e.metaKey)) selected.clear();
      for (let k = Math.min(a, i); k <= Math.max(a, i); k++) selected.add(items[k].name);
    } else if (e.ctrlKey || e.metaKey) {
      if (selected.has(it.name)) selected.delete(it.name);
      else selected.add(it.name);
      anchor = it.name;
    } else {
      selected.clear();
      selected.add(it.name);
      anchor = it.name;
    }
    showSelection();
  };

  const renameItem = async (it: ContentsModel) => {
    const name = await ask('Rename', 'New name', it.name);
    if (!name || name === it.name) return;
    try {
      await contents.rename(it.path, join(dir, name));
      recent.rename(it.path, join(dir, name));
      selected.clear();
      selected.add(name);
      anchor = name;
    } catch (e) { toast(`Rename failed: ${(e as Error).message}`, 'error'); }
    await refresh();
    rowOf(name)?.focus();
  };

  const moveItems = async (its: ContentsModel[]) => {
    if (!its.length) return;
    const title = its.length === 1 ? `Move "${its[0].name}"` : `Move ${its.length} items`;
    const to = await pickFolder(title, dir, its.filter((x) => x.type === 'directory').map((x) => x.path), dir);
    if (to === null || to === dir) return;
    for (const it of its) {
      const dest = join(to, it.name);
      try {
        await contents.rename(it.path, dest);
        recent.rename(it.path, dest);
      } catch (e) { toast(`Moving ${it.name} failed: ${(e as Error).message}`, 'error'); }
    }
    toast(`Moved ${its.length === 1 ? `"${its[0].name}"` : `${its.length} items`} to ${to || 'My Drive'}`);
    refresh();
  };

  const deleteItems = async (its: ContentsModel[]) => {
    if (!its.length) return;
    const what = its.length === 1
      ? `Delete "${its[0].name}"${its[0].type === 'directory' ? ' and everything in it' : ''}?`
      : `Delete these ${its.length} items${its.some((x) => x.type === 'directory') ? ', folders with everything in them' : ''}? ` +
        its.slice(0, 5).map((x) => x.name).join(', ') + (its.length > 5 ? `, and ${its.length - 5} more` : '');
    if (!(await confirmBox('Delete', what, 'Delete'))) return;
    const trashed: string[] = [];
    for (const it of its) {
      try {
        const id = await contents.trash(it.path);
        if (id) trashed.push(id);
        recent.remove(it.path);
        selected.delete(it.name);
      } catch (e) { toast(`Deleting ${it.name} failed: ${(e as Error).message}`, 'error'); }
    }
    if (trashed.length) {
      toast(trashed.length === 1 ? 'Moved to trash' : `${trashed.length} items moved to trash`, 'info', 10000, {
        label: 'Undo', run: async () => {
          for (const id of trashed) {
            try { await trash.restore(id); } catch (e) { toast(`Restoring failed: ${(e as Error).message}`, 'error'); }
          }
          refresh();
        },
      });
    }
    refresh();
  };

  const download = (it: ContentsModel) => {
    if (it.type === 'directory') downloadUrl(folderZipUrl(it.path), it.name + '.zip');
    else downloadFile(it.path).catch((e) => toast(e.message, 'error'));
  };

  const extract = async (it: ContentsModel) => {
    // Asked as a path, not picked: the folder is often a new one (the hub makes it).
    const to = await ask('Extract', 'Into folder (empty for My Drive)', dir);
    if (to === null) return;
    try {
      const id = await startExtract(it.path, to.replace(/^\/+|\/+$/g, ''));
      if (await showExtraction(uploads, it.name, id)) refresh();
    } catch (e) { toast(`Extract failed: ${(e as Error).message}`, 'error'); }
  };

  const menuAt = (x: number, y: number) => {
    const its = selection();
    if (!its.length) return;
    const one = its.length === 1 ? its[0] : null;
    contextMenu(x, y, [
      { label: 'Open', disabled: !one, run: () => one && open(one) },
      { label: 'Rename', disabled: !one, run: () => one && renameItem(one) },
      { label: 'Move', run: () => moveItems(its) },
      { label: one?.type === 'directory' ? 'Download as zip' : 'Download', disabled: !one, run: () => one && download(one) },
      ...(one && one.type === 'file' && isArchive(one.name) ? [{ label: 'Extract', run: () => extract(one) }] : []),
      { label: 'Delete', run: () => deleteItems(its) },
    ]);
  };

  // Keys on the listing: Delete, F2, Enter, arrows (Shift extends), Ctrl+A,
  // Escape, and the menu key (or Shift+F10) for the context menu.
  const onKey = (e: KeyboardEvent) => {
    if ((e.target as HTMLElement).closest('input, textarea, button')) return;
    const focused = items.find((x) => x.name === (e.target as HTMLElement).closest<HTMLElement>('tr.item')?.dataset.name);
    const mod = e.ctrlKey || e.metaKey;
    if (e.key === 'Delete' || (e.key === 'Backspace' && e.metaKey)) {
      if (focused && !selected.has(focused.name)) select(focused, { ctrlKey: false, metaKey: false, shiftKey: false });
      deleteItems(selection());
    } else if (e.key === 'F2') {
      const it = focused && selected.has(focused.name) ? focused : selection()[0] || focused;
      if (it) renameItem(it);
    } else if (e.key === 'Enter' && focused) {
      open(focused);
    } else if ((e.key === 'ArrowDown' || e.key === 'ArrowUp') && items.length) {
      const i = focused ? items.indexOf(focused) : -1;
      const next = items[Math.max(0, Math.min(items.length - 1, e.key === 'ArrowDown' ? i + 1 : i < 0 ? items.length - 1 : i - 1))];
      if (e.shiftKey && anchor === null && focused) anchor = focused.name;
      select(next, { ctrlKey: false, metaKey: false, shiftKey: e.shiftKey });
      if (!e.shiftKey) anchor = next.name;
      rowOf(next.name)?.focus();
    } else if (mod && e.key.toLowerCase() === 'a') {
      for (const it of items) selected.add(it.name);
      showSelection();
    } else if (e.key === 'Escape' && selected.size) {
      selected.clear();
      showSelection();
    } else if ((e.key === 'ContextMenu' || (e.key === 'F10' && e.shiftKey)) && focused) {
      if (!selected.has(focused.name)) select(focused, { ctrlKey: false, metaKey: false, shiftKey: false });
      const r = rowOf(focused.name)!.getBoundingClientRect();
      menuAt(r.left + 40, r.bottom);
    } else {
      return;
    }
    e.preventDefault();
  };

  const row = (it: ContentsModel) => {
    const act = (ic: string, title: string, fn: () => void) =>
      h('button', { class: 'icon', title, 'aria-label': `${title} ${it.name}`, onclick: (e: Event) => { e.stopPropagation(); fn(); } }, icon(ic));
    const href = it.type === 'directory' ? treeUrl(it.path) : it.type === 'notebook' ? notebookUrl(it.path) : isTextFile(it.name) ? editUrl(it.path) : '#';
    const tr = h('tr', {
      class: 'item', 'data-name': it.name, 'data-type': it.type, tabindex: 0, 'aria-selected': 'false',
      ondblclick: (e: MouseEvent) => { if (!(e.target as HTMLElement).closest('button')) open(it); },
      onclick: (e: MouseEvent) => {
        if ((e.target as HTMLElement).closest('button')) return;
        if ((e.target as HTMLElement).closest('a') && !(e.ctrlKey || e.metaKey || e.shiftKey)) return;
        select(it, e);
      },
      // Shift + click would select the page's text as well.
      onmousedown: (e: MouseEvent) => { if (e.shiftKey) e.preventDefault(); },
      oncontextmenu: (e: MouseEvent) => {
        e.preventDefault();
        if (!selected.has(it.name)) select(it, { ctrlKey: false, metaKey: false, shiftKey: false });
        menuAt(e.clientX, e.clientY);
      },
    },
      h('td', { class: 'name' }, h('span', { class: 'ic ' + it.type }, icon(icons[it.type])),
        h('a', { href, text: it.name, onclick: (e: MouseEvent) => {
          e.preventDefault();
          if (!(e.ctrlKey || e.metaKey || e.shiftKey)) open(it);
        } })),
      h('td', { class: 'mod', text: formatDate(it.last_modified) }),
      h('td', { class: 'size', text: it.type === 'directory' ? '' : formatSize(it.size) }),
      h('td', { class: 'acts' },
        act('edit', 'Rename', () => renameItem(it)),
        act('move', 'Move', () => moveItems(selected.has(it.name) ? selection() : [it])),
        it.type === 'file' && isArchive(it.name) && act('unpack', 'Extract', () => extract(it)),
        act('download', it.type === 'directory' ? 'Download as zip' : 'Download', () => download(it)),
        act('trash', 'Delete', () => deleteItems([it]))));
    return tr;
  };

  // Breadcrumbs: My Drive / a / b
  crumbs.append(h('a', { href: '/tree', text: 'My Drive', onclick: (e: Event) => { e.preventDefault(); navigate('/tree'); } }));
  let acc = '';
  for (const part of dir.split('/').filter(Boolean)) {
    acc = join(acc, part);
    const to = acc;
    crumbs.append(' / ', h('a', { href: treeUrl(to), text: part, onclick: (e: Event) => { e.preventDefault(); navigate(treeUrl(to)); } }));
  }

  fileInput.addEventListener('change', async () => {
    const files = Array.from(fileInput.files || []);
    fileInput.value = '';
    if (files.length > MANY_FILES) manyFilesHint(uploads, files.length);
    if (files.length) await uploadInto(dir, files, uploads, refresh);
    refresh();
  });

  const recentBox = h('ul', { class: 'recent' });
  for (const r of recent.list().slice(0, 8)) {
    recentBox.append(h('li', {}, h('a', { href: notebookUrl(r.path), text: r.path, onclick: (e: Event) => { e.preventDefault(); navigate(notebookUrl(r.path)); } })));
  }

  const table = h('table', { class: 'files', role: 'grid', 'aria-multiselectable': 'true' },
    h('thead', {}, h('tr', {}, h('th', { text: 'Name' }), h('th', { text: 'Modified' }), h('th', { text: 'Size' }), h('th', {}))),
    list);
  table.addEventListener('keydown', onKey);
  const drop = h('section', { class: 'drive', 'aria-label': 'Files' }, table);
  // A click beside the rows clears the selection, as in Drive.
  drop.addEventListener('click', (e) => {
    if (!(e.target as HTMLElement).closest('tr.item') && selected.size) { selected.clear(); showSelection(); }
  });
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('dragging'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('dragging'));
  drop.addEventListener('drop', async (e) => {
    e.preventDefault();
    drop.classList.remove('dragging');
    if (e.dataTransfer?.files.length) {
      if (e.dataTransfer.files.length > MANY_FILES) manyFilesHint(uploads, e.dataTransfer.files.length);
      await uploadInto(dir, e.dataTransfer.files, uploads, refresh);
      refresh();
    }
  });

  // In a narrow window the side bar folds away behind a button and opens over the list.
  const home = h('div', { class: 'home' });
  const sideBtn = h('button', { class: 'icon side-toggle', title: 'Show the side bar', 'aria-label': 'Side bar', 'aria-expanded': 'false', 'data-testid': 'side-toggle',
    onclick: (e: Event) => { e.stopPropagation(); showSide(!home.classList.contains('side-open')); } }, icon('menu'));
  const showSide = (open: boolean) => { home.classList.toggle('side-open', open); sideBtn.setAttribute('aria-expanded', String(open)); };
  const withChildren = (el: HTMLElement, ...c: Node[]) => { el.append(...c); return el; };
  home.addEventListener('click', (e) => { if (!(e.target as HTMLElement).closest('.side')) showSide(false); });

  root.append(
    topBar(),
    withChildren(home,
      h('aside', { class: 'side' },
        h('button', { class: 'primary big', 'data-testid': 'new-notebook', onclick: async () => {
          try { navigate(notebookUrl(await newNotebook(dir || NOTEBOOK_FOLDER))); } catch (e) { toast((e as Error).message, 'error'); }
        } }, icon('plus'), ' New notebook'),
        h('button', { text: 'New folder', onclick: async () => {
          const name = await ask('New folder', 'Name', 'Untitled Folder');
          if (!name) return;
          try { await contents.save(join(dir, name), { type: 'directory' }); } catch (e) { toast((e as Error).message, 'error'); }
          refresh();
        } }),
        h('button', { onclick: () => fileInput.click() }, icon('upload'), ' Upload files'),
        fileInput,
        h('label', { class: 'check', title: 'Unpack .zip, .tar(.gz, .bz2, .xz, .zst) and .7z files into this folder as they arrive' },
          h('input', { type: 'checkbox', 'data-testid': 'extract-on-arrival', checked: extractOnArrival(),
            onchange: (e: Event) => localStorage.setItem(EXTRACT_KEY, (e.target as HTMLInputElement).checked ? '1' : '0') }),
          ' Extract archives on arrival'),
        h('a', { class: 'side-link', href: '/trash', 'data-testid': 'trash-link', onclick: (e: Event) => { e.preventDefault(); navigate('/trash'); } }, icon('trash'), ' Trash'),
        h('h3', { text: 'Recent notebooks' }),
        recentBox,
        h('button', { class: 'link', text: 'Open a notebook by path…', onclick: async () => {
          const p = await ask('Open notebook', 'Path in My Drive', join(dir, ''));
          if (!p) return;
          if (!p.endsWith('.ipynb')) { toast('A notebook\'s name ends with .ipynb', 'error'); return; }
          navigate(notebookUrl(p.replace(/^\/+/, '')));
        } })),
      h('main', { class: 'main' }, h('div', { class: 'main-head' }, sideBtn, crumbs), uploads, drop)));
  await refresh();
}

