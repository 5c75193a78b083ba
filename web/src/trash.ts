// The Trash view (/trash): what the user deleted from the drive, newest first, with
// Restore and Delete forever per item and Empty trash (after a confirm). Items go by
// themselves after the hub's trash_days (docs/drive.md, "Trash").
import { TrashItem, trash } from './api';
import { clear, confirmBox, formatDate, formatSize, h, toast, treeUrl } from './ui';
import { navigate, topBar } from './main';
import { icon } from './icons';

export async function renderTrash(root: HTMLElement): Promise<void> {
  clear(root);
  const list = h('tbody', {});
  const note = h('p', { class: 'trash-note' });
  const emptyBtn = h('button', { 'data-testid': 'empty-trash', text: 'Empty trash' }) as HTMLButtonElement;

  const refresh = async () => {
    let r: { items: TrashItem[]; truncated: boolean; days: number };
    try { r = await trash.list(); } catch (e) { toast((e as Error).message, 'error'); return; }
    clear(list);
    const days = Math.round(r.days * 10) / 10;
    note.textContent = r.items.length
      ? `Items in the trash are deleted forever after ${days} day${days === 1 ? '' : 's'}.${r.truncated ? ' Only the newest are shown.' : ''}`
      : 'The trash is empty.';
    emptyBtn.disabled = !r.items.length;
    for (const it of r.items) list.append(row(it));
  };

  const row = (it: TrashItem) => h('tr', { class: 'item', 'data-name': it.name },
    h('td', { class: 'name' }, h('span', { class: 'ic ' + it.type }, icon(it.type === 'directory' ? 'folder' : 'file')), it.name),
    h('td', { class: 'path', text: it.path.includes('/') ? it.path.slice(0, it.path.lastIndexOf('/')) : 'My Drive' }),
    h('td', { class: 'mod', text: formatDate(it.deleted) }),
    h('td', { class: 'size', text: formatSize(it.size) }),
    h('td', { class: 'acts' },
      h('button', { text: 'Restore', onclick: async () => {
        try {
          const r = await trash.restore(it.id);
          const dir = r.path.includes('/') ? r.path.slice(0, r.path.lastIndexOf('/')) : '';
          toast(`Restored "${r.name}" to ${dir || 'My Drive'}`);
        } catch (e) { toast(`Restoring failed: ${(e as Error).message}`, 'error'); }
        refresh();
      } }),
      h('button', { text: 'Delete forever', onclick: async () => {
        if (!(await confirmBox('Delete forever', `Delete "${it.name}" forever? This cannot be undone.`, 'Delete forever'))) return;
        try { await trash.deleteForever(it.id); } catch (e) { toast((e as Error).message, 'error'); }
        refresh();
      } })));

  emptyBtn.addEventListener('click', async () => {
    if (!(await confirmBox('Empty trash', 'Delete everything in the trash forever? This cannot be undone.', 'Empty trash'))) return;
    try {
      const r = await trash.empty();
      toast(`Deleted ${r.deleted} item${r.deleted === 1 ? '' : 's'} forever`);
    } catch (e) { toast((e as Error).message, 'error'); }
    refresh();
  });

  const back = h('a', { href: '/tree', text: 'My Drive', onclick: (e: Event) => { e.preventDefault(); navigate(treeUrl('')); } });
  root.append(topBar(),
    h('div', { class: 'home trash-view' },
      h('main', { class: 'main' },
        h('div', { class: 'main-head' }, h('div', { class: 'crumbs' }, back, ' / Trash'), emptyBtn),
        note,
        h('section', { class: 'drive', 'aria-label': 'Trash' },
          h('table', { class: 'files' },
            h('thead', {}, h('tr', {}, h('th', { text: 'Name' }), h('th', { text: 'Original location' }), h('th', { text: 'Deleted' }), h('th', { text: 'Size' }), h('th', {}))),
            list)))));
  await refresh();
}
