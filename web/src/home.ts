// Home: the user's drive. Folders, notebooks and files; new notebook (in "Colab
// Notebooks", as Colab does), new folder, upload by button or drag and drop with
// progress (resumable, through upload.ts), extract archives, rename, move, delete,
// download (files, and folders as zips); recent notebooks.
import { ContentsModel, contents, downloadFile } from './api';
import { downloadUrl, folderZipUrl, isArchive, showExtraction, startExtract, uploadFiles } from './upload';
import { ask, clear, confirmBox, formatDate, formatSize, h, notebookUrl, recent, toast, treeUrl } from './ui';
import { navigate, topBar } from './main';
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
    const items = (m.content as ContentsModel[]).filter((x) => !x.name.startsWith('.'));
    items.sort((a, b) => (a.type === 'directory' ? 0 : 1) - (b.type === 'directory' ? 0 : 1) || a.name.localeCompare(b.name));
    if (!items.length) list.append(h('tr', {}, h('td', { colspan: 4, class: 'empty', text: 'This folder is empty. Drop files here to upload them.' })));
    for (const it of items) list.append(row(it));
  };

  const open = (it: ContentsModel) => {
    if (it.type === 'directory') navigate(treeUrl(it.path));
    else if (it.type === 'notebook') navigate(notebookUrl(it.path));
    else downloadFile(it.path).catch((e) => toast(e.message, 'error'));
  };

  const row = (it: ContentsModel) => {
    const act = (ic: string, title: string, fn: () => void) =>
      h('button', { class: 'icon', title, 'aria-label': `${title} ${it.name}`, onclick: (e: Event) => { e.stopPropagation(); fn(); } }, icon(ic));
    const tr = h('tr', { class: 'item', 'data-name': it.name, 'data-type': it.type, tabindex: 0, ondblclick: () => open(it), onkeydown: (e: KeyboardEvent) => { if (e.key === 'Enter') open(it); } },
      h('td', { class: 'name' }, h('span', { class: 'ic ' + it.type }, icon(icons[it.type])),
        h('a', { href: it.type === 'directory' ? treeUrl(it.path) : it.type === 'notebook' ? notebookUrl(it.path) : '#', text: it.name, onclick: (e: Event) => { e.preventDefault(); open(it); } })),
      h('td', { class: 'mod', text: formatDate(it.last_modified) }),
      h('td', { class: 'size', text: it.type === 'directory' ? '' : formatSize(it.size) }),
      h('td', { class: 'acts' },
        act('edit', 'Rename', async () => {
          const name = await ask('Rename', 'New name', it.name);
          if (!name || name === it.name) return;
          try {
            await contents.rename(it.path, join(dir, name));
            recent.rename(it.path, join(dir, name));
          } catch (e) { toast(`Rename failed: ${(e as Error).message}`, 'error'); }
          refresh();
        }),
        act('move', 'Move', async () => {
          const to = await ask('Move', 'To folder (empty for My Drive)', dir);
          if (to === null) return;
          const dest = join(to.replace(/^\/+|\/+$/g, ''), it.name);
          try {
            await contents.rename(it.path, dest);
            recent.rename(it.path, dest);
          } catch (e) { toast(`Move failed: ${(e as Error).message}`, 'error'); }
          refresh();
        }),
        it.type === 'file' && isArchive(it.name) && act('unpack', 'Extract', async () => {
          const to = await ask('Extract', 'Into folder (empty for My Drive)', dir);
          if (to === null) return;
          try {
            const id = await startExtract(it.path, to.replace(/^\/+|\/+$/g, ''));
            if (await showExtraction(uploads, it.name, id)) refresh();
          } catch (e) { toast(`Extract failed: ${(e as Error).message}`, 'error'); }
        }),
        act('download', it.type === 'directory' ? 'Download as zip' : 'Download', () => {
          if (it.type === 'directory') downloadUrl(folderZipUrl(it.path), it.name + '.zip');
          else downloadFile(it.path).catch((e) => toast(e.message, 'error'));
        }),
        act('trash', 'Delete', async () => {
          if (!(await confirmBox('Delete', `Delete "${it.name}"${it.type === 'directory' ? ' and everything in it' : ''}?`, 'Delete'))) return;
          try {
            await contents.remove(it.path);
            recent.remove(it.path);
          } catch (e) { toast(`Delete failed: ${(e as Error).message}`, 'error'); }
          refresh();
        })));
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
    if (files.length) await uploadInto(dir, files, uploads, refresh);
    refresh();
  });

  const recentBox = h('ul', { class: 'recent' });
  for (const r of recent.list().slice(0, 8)) {
    recentBox.append(h('li', {}, h('a', { href: notebookUrl(r.path), text: r.path, onclick: (e: Event) => { e.preventDefault(); navigate(notebookUrl(r.path)); } })));
  }

  const table = h('table', { class: 'files' },
    h('thead', {}, h('tr', {}, h('th', { text: 'Name' }), h('th', { text: 'Modified' }), h('th', { text: 'Size' }), h('th', {}))),
    list);
  const drop = h('section', { class: 'drive', 'aria-label': 'Files' }, table);
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('dragging'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('dragging'));
  drop.addEventListener('drop', async (e) => {
    e.preventDefault();
    drop.classList.remove('dragging');
    if (e.dataTransfer?.files.length) {
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

