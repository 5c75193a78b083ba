// Small DOM helpers shared by every page: element builder, dialogs, toasts.

type Child = Node | string | null | undefined | false;
type Attrs = Record<string, any>;

/** Creates an element: attributes (on* are listeners, class, dataset-like strings), children. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k in el && typeof v !== 'string') (el as any)[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) if (c) el.append(c);
  return el;
}

export function clear(el: Element): void {
  while (el.firstChild) el.firstChild.remove();
}

interface DialogButton { label: string; value: string; primary?: boolean }

/** A modal dialog with a body and buttons; resolves with the button's value, or null
 * when dismissed (Escape, click outside). opts.enter: the value Enter gives (outside
 * buttons and text areas); opts.focus: a selector for what gets the focus first. */
export function dialog(title: string, body: Node | string, buttons: DialogButton[], opts: { wide?: boolean; onOpen?: () => void; enter?: string; focus?: string; class?: string } = {}): Promise<string | null> {
  return new Promise((resolve) => {
    const back = h('div', { class: 'modal-back' });
    const done = (v: string | null) => {
      back.remove();
      document.removeEventListener('keydown', onKey, true);
      resolve(v);
    };
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') { e.preventDefault(); e.stopPropagation(); done(null); return; }
      const t = e.target as HTMLElement | null;
      if (e.key === 'Enter' && opts.enter !== undefined && !e.shiftKey && !e.ctrlKey && !e.altKey && !e.metaKey &&
          t && box.contains(t) && t.tagName !== 'BUTTON' && t.tagName !== 'TEXTAREA') {
        e.preventDefault(); e.stopPropagation(); done(opts.enter);
      }
    };
    const box = h('div', { class: 'modal' + (opts.wide ? ' wide' : '') + (opts.class ? ' ' + opts.class : ''), role: 'dialog', 'aria-modal': 'true', 'aria-label': title },
      h('h2', { text: title }),
      h('div', { class: 'modal-body' }, body),
      h('div', { class: 'modal-buttons' }, ...buttons.map((b) =>
        h('button', { class: b.primary ? 'primary' : '', text: b.label, 'data-value': b.value, onclick: () => done(b.value) }))));
    back.append(box);
    back.addEventListener('mousedown', (e) => { if (e.target === back) done(null); });
    document.addEventListener('keydown', onKey, true);
    document.body.append(back);
    opts.onOpen?.();
    const focus = (opts.focus ? box.querySelector<HTMLElement>(opts.focus) : null) || box.querySelector<HTMLElement>('input, select, button.primary, button');
    focus?.focus();
  });
}

/** Asks for one line of text; null when cancelled. */
export async function ask(title: string, label: string, value = ''): Promise<string | null> {
  const input = h('input', { type: 'text', value, 'aria-label': label, class: 'ask-input' });
  const body = h('label', { class: 'field' }, h('span', { text: label }), input);
  let submit: () => void = () => {};
  input.addEventListener('keydown', (e) => { if (e.key === 'Enter') { e.preventDefault(); submit(); } });
  const p = dialog(title, body, [{ label: 'Cancel', value: 'cancel' }, { label: 'OK', value: 'ok', primary: true }], {
    onOpen: () => {
      submit = () => (input.closest('.modal')!.querySelector('button.primary') as HTMLButtonElement).click();
      setTimeout(() => { input.focus(); const dot = value.lastIndexOf('.'); input.setSelectionRange(0, dot > 0 ? dot : value.length); });
    },
  });
  const r = await p;
  return r === 'ok' ? input.value : null;
}

export async function confirmBox(title: string, text: string, ok = 'OK'): Promise<boolean> {
  return (await dialog(title, text, [{ label: 'Cancel', value: 'cancel' }, { label: ok, value: 'ok', primary: true }])) === 'ok';
}

let toastBox: HTMLElement | null = null;

/** A short message at the bottom of the page. */
/** A passing message at the bottom left; with action, a button in it (Undo) that runs
 * once and closes the toast. */
export function toast(text: string, kind: 'info' | 'error' = 'info', ms = 5000,
  action?: { label: string; run: () => void }): void {
  if (!toastBox || !toastBox.isConnected) {
    toastBox = h('div', { class: 'toasts', role: 'status', 'aria-live': 'polite' });
    document.body.append(toastBox);
  }
  const t = h('div', { class: 'toast ' + kind }, h('span', { text }));
  if (action) {
    t.append(h('button', { class: 'toast-act', text: action.label, onclick: () => { t.remove(); action.run(); } }));
  }
  toastBox.append(t);
  setTimeout(() => t.remove(), ms);
}

export function formatSize(n: number | null): string {
  if (n === null || n === undefined) return '';
  if (n < 1024) return `${n} B`;
  const u = ['KiB', 'MiB', 'GiB', 'TiB'];
  let i = -1;
  do { n /= 1024; i++; } while (n >= 1024 && i < u.length - 1);
  return `${n.toFixed(n < 10 ? 1 : 0)} ${u[i]}`;
}

export function formatDate(iso: string): string {
  const d = new Date(iso);
  if (isNaN(d.getTime())) return '';
  const now = new Date();
  if (d.toDateString() === now.toDateString()) return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  return d.toLocaleDateString([], { year: 'numeric', month: 'short', day: 'numeric' });
}

/** Recently opened notebooks, newest first, kept in this browser. */
export const recent = {
  list(): { path: string; time: number }[] {
    try { return JSON.parse(localStorage.getItem('labbook:recent') || '[]'); } catch { return []; }
  },
  add(path: string): void {
    const l = recent.list().filter((r) => r.path !== path);
    l.unshift({ path, time: Date.now() });
    localStorage.setItem('labbook:recent', JSON.stringify(l.slice(0, 20)));
  },
  rename(from: string, to: string): void {
    localStorage.setItem('labbook:recent', JSON.stringify(recent.list().map((r) => (r.path === from ? { ...r, path: to } : r))));
  },
  remove(path: string): void {
    localStorage.setItem('labbook:recent', JSON.stringify(recent.list().filter((r) => r.path !== path)));
  },
};

export function notebookUrl(path: string): string {
  return '/notebooks/' + path.split('/').map(encodeURIComponent).join('/');
}
export function treeUrl(path: string): string {
  return path ? '/tree/' + path.split('/').map(encodeURIComponent).join('/') : '/tree';
}

const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });

/** Orders names as people read them: digits as numbers (Untitled2 before
 * Untitled10), case and accents ignored; names that tie that way fall back to
 * code point order, so the order never depends on how the server listed them. */
export function naturalCompare(a: string, b: string): number {
  return collator.compare(a, b) || (a < b ? -1 : a > b ? 1 : 0);
}

export interface MenuItem { label: string; run: () => void; disabled?: boolean }

let openMenu: (() => void) | null = null;

/** A context menu at (x, y) in the viewport: arrows move, Enter picks, Escape, a
 * click elsewhere, scrolling or a resize close it. One is open at a time. */
export function contextMenu(x: number, y: number, items: MenuItem[]): void {
  openMenu?.();
  const menu = h('div', { class: 'ctx-menu', role: 'menu' });
  const close = () => {
    menu.remove();
    document.removeEventListener('mousedown', onDown, true);
    document.removeEventListener('keydown', onKey, true);
    window.removeEventListener('blur', close);
    window.removeEventListener('resize', close);
    document.removeEventListener('scroll', close, true);
    if (openMenu === close) openMenu = null;
  };
  const buttons = items.map((it) => h('button', {
    role: 'menuitem', text: it.label, disabled: it.disabled, 'data-action': it.label,
    onclick: () => { close(); it.run(); },
  }));
  const onDown = (e: MouseEvent) => { if (!menu.contains(e.target as Node)) close(); };
  const onKey = (e: KeyboardEvent) => {
    const live = buttons.filter((b) => !b.disabled);
    const i = live.indexOf(document.activeElement as HTMLButtonElement);
    if (e.key === 'Escape') close();
    else if (e.key === 'ArrowDown') live[(i + 1) % live.length]?.focus();
    else if (e.key === 'ArrowUp') live[(i - 1 + live.length) % live.length]?.focus();
    else return;
    e.preventDefault();
    e.stopPropagation();
  };
  menu.append(...buttons);
  document.body.append(menu);
  // Kept inside the window, as a native menu is.
  const r = menu.getBoundingClientRect();
  menu.style.left = Math.max(0, Math.min(x, innerWidth - r.width - 4)) + 'px';
  menu.style.top = Math.max(0, Math.min(y, innerHeight - r.height - 4)) + 'px';
  document.addEventListener('mousedown', onDown, true);
  document.addEventListener('keydown', onKey, true);
  window.addEventListener('blur', close);
  window.addEventListener('resize', close);
  document.addEventListener('scroll', close, true);
  openMenu = close;
  buttons.find((b) => !b.disabled)?.focus();
}
