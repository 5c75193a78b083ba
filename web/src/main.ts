// The UI's entry: a small client-side router over the hub's pages. /tree/... is the
// drive (home.ts, in this bundle); /notebooks/... loads the editor chunk on demand;
// /edit/PATH is a text file of the drive in an editor (fileview.ts).
import { me } from './api';
import { h, toast } from './ui';
import { renderHome } from './home';
import { renderTrash } from './trash';
import { renderEditor } from './fileview';
import { applyTheme, themeSwitch } from './theme';

applyTheme();

let user = '';
let leaveHook: (() => boolean) | null = null;

/** The notebook page registers this to be asked before the page changes. */
export function setLeaveHook(fn: (() => boolean) | null): void {
  leaveHook = fn;
}

export function navigate(url: string, replace = false): void {
  if (leaveHook && !leaveHook()) return;
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  route();
}

export function topBar(...extra: (Node | string)[]): HTMLElement {
  return h('header', { class: 'top' },
    h('a', { class: 'logo', href: '/tree', onclick: (e: Event) => { e.preventDefault(); navigate('/tree'); } }, h('span', { class: 'logo-mark', text: '◆' }), 'labbook'),
    ...extra,
    h('span', { class: 'spacer' }),
    themeSwitch(),
    h('span', { class: 'user', text: user, title: 'Signed in as ' + user }),
    h('a', { class: 'signout', href: '/logout', text: 'Sign out' }));
}

function decodePath(s: string): string {
  return s.split('/').filter(Boolean).map(decodeURIComponent).join('/');
}

let routeSeq = 0;

async function route(): Promise<void> {
  const app = document.getElementById('app')!;
  const seq = ++routeSeq;
  const p = location.pathname;
  leaveHook = null;
  (window as any).__labbookCleanup?.();
  (window as any).__labbookCleanup = null;
  try {
    if (p.startsWith('/notebooks/')) {
      const { openNotebook } = await import('./notebook/notebook');
      if (seq !== routeSeq) return;
      await openNotebook(app, decodePath(p.slice('/notebooks/'.length)));
    } else if (p === '/trash') {
      await renderTrash(app);
    } else if (p.startsWith('/edit/')) {
      await renderEditor(app, decodePath(p.slice('/edit/'.length)));
    } else {
      const dir = p.startsWith('/tree/') ? decodePath(p.slice('/tree/'.length)) : '';
      await renderHome(app, dir);
    }
  } catch (e) {
    console.error(e);
    toast(`Error: ${(e as Error).message}`, 'error');
  }
}

window.addEventListener('popstate', () => route());
window.addEventListener('beforeunload', (e) => {
  if (leaveHook && !leaveHook()) e.preventDefault();
});

(async () => {
  try {
    const m = await me();
    user = m.identity.username;
    if (m.labbook && !m.labbook.sandboxed) {
      // The server runs notebooks without a sandbox (no root, no user namespaces):
      // say so on every page, as the server's log does.
      document.body.prepend(h('div', {
        class: 'banner-warn', role: 'alert', 'data-testid': 'not-sandboxed',
        text: 'Runtimes on this server are not sandboxed: code in a notebook runs with the server\'s rights and can reach other users\' files. Ask the administrator to run labbook as root or to allow user namespaces.',
      }));
    }
  } catch { /* the page redirects to /login when signed out */ }
  route();
})();
